//! Command-line flags, as plain data. Validation into library specs happens
//! in the command modules.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "den",
    version,
    about = "Rootless containers: pull, build, run and share images without root or a daemon"
)]
pub struct Cli {
    /// Store directory (default: $XDG_DATA_HOME/den).
    #[arg(long, global = true, env = "DEN_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// How much den says on stderr: debug (what den does, with the step
    /// timings of DEN_TRACE), info, warn (the default) or error (errors only).
    #[arg(long, global = true, value_name = "LEVEL", value_parser = ["debug", "info", "warn", "error"])]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Run a command in a new container.
    Run(Box<RunArgs>),
    /// Create a container (every `run` flag) without starting it; print
    /// its id. `den start` starts it.
    Create(Box<RunArgs>),
    /// List containers.
    Ps(PsArgs),
    /// Show a container's output.
    Logs(LogsArgs),
    /// Stop running containers (stop signal, then SIGKILL after a timeout).
    Stop(StopArgs),
    /// Send a signal to running containers.
    Kill {
        /// Signal name or number.
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        /// Every running container.
        #[arg(short, long, conflicts_with = "containers")]
        all: bool,
        #[arg(required_unless_present = "all")]
        containers: Vec<String>,
    },
    /// Start created or stopped containers (their filesystem changes are kept).
    Start {
        /// Stay attached to the container's output and return its exit code.
        #[arg(short, long)]
        attach: bool,
        /// Attach standard input (implies --attach).
        #[arg(short, long)]
        interactive: bool,
        /// Keys that detach from a terminal container, leaving it running
        /// (default ctrl-p,ctrl-q).
        #[arg(long, value_name = "KEYS")]
        detach_keys: Option<String>,
        /// Every container that is not running (long form only: `-a` is
        /// `--attach`, as in Docker and podman).
        #[arg(long, conflicts_with_all = ["containers", "attach"])]
        all: bool,
        #[arg(required_unless_present = "all")]
        containers: Vec<String>,
    },
    /// Connect this terminal to a running `-t` container; Ctrl-P Ctrl-Q
    /// detaches and leaves it running.
    Attach {
        /// Keys that detach (Docker's format: ctrl-<key> or a character,
        /// comma-separated; default ctrl-p,ctrl-q).
        #[arg(long, value_name = "KEYS")]
        detach_keys: Option<String>,
        container: String,
    },
    /// Stop and start containers.
    Restart(StopArgs),
    /// Remove containers.
    Rm(RmArgs),
    /// Make an image of a container's changes.
    Commit(CommitArgs),
    /// Wait until containers stop; print their exit codes.
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Show containers (or images) as JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
        /// Go template (`{{.State.Status}}`) for each, or json.
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// Rename a container.
    Rename { container: String, new_name: String },
    /// Run a command in a running container.
    Exec(Box<ExecArgs>),
    /// Manage user networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Show a running container's processes.
    Top { container: String },
    /// Live CPU, memory, network, block I/O and pids of containers.
    Stats {
        /// Containers to show (default: all running ones).
        containers: Vec<String>,
        /// All containers, not only running ones.
        #[arg(short, long)]
        all: bool,
        /// Print one sample and exit.
        #[arg(long)]
        no_stream: bool,
        /// table (default) or json (one object per container and line).
        #[arg(long)]
        format: Option<String>,
    },
    /// Show a container's published ports.
    Port {
        container: String,
        port: Option<String>,
    },
    /// Copy files between a container and the host: CONTAINER:PATH HOSTPATH, or HOSTPATH CONTAINER:PATH.
    Cp { source: String, destination: String },
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Download an image from a registry.
    Pull(PullArgs),
    /// List images.
    Images(ImagesArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Give an image another name.
    Tag { source: String, target: String },
    /// Remove images.
    Rmi(RmiArgs),
    /// Manage named volumes.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Write images to an OCI layout tar (also readable by `docker load`).
    Save(SaveArgs),
    /// Read images from an OCI layout (tar or directory) or a docker-archive tar.
    Load(LoadArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
    /// Store credentials for a registry.
    Login(LoginArgs),
    /// Remove stored credentials for a registry.
    Logout { registry: String },
    /// System information and checks.
    #[command(subcommand)]
    System(SystemCommand),
    /// Run a host command inside den's user namespace (e.g. to delete files owned by subordinate ids).
    Unshare {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Build an image from a Dockerfile.
    Build(Box<BuildArgs>),
    /// Manage the build cache.
    #[command(subcommand)]
    Builder(BuilderCommand),
    /// Run a container's health check now.
    #[command(subcommand)]
    Healthcheck(HealthcheckCommand),
    /// Show an image's history: one row per instruction that made it.
    History(HistoryArgs),
    /// Print a shell completion script: `den completion bash > /etc/bash_completion.d/den`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The store, the user namespace mode, landlock, pasta, cgroups and counts.
    Info {
        /// json or a Go template (`{{.UserNamespace}}`).
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// den's version and its components' (kernel, pasta, landlock ABI).
    Version {
        /// json or a Go template (`{{.Version}}`).
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// Run multi-container applications from compose files.
    Compose(Box<crate::compose::args::ComposeArgs>),
    #[command(subcommand, hide = true, name = "__internal")]
    Internal(InternalCommand),
}

// `den build` (its own block: see cmd/build.rs).
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The build context: a directory (`-`: the Dockerfile on standard input, no context).
    pub context: String,
    /// The Dockerfile (default CONTEXT/Dockerfile; `-` reads standard input).
    #[arg(short, long, value_name = "FILE")]
    pub file: Option<String>,
    /// Only parse and check the Dockerfile; run nothing.
    #[arg(long)]
    pub check: bool,
    /// Name the result NAME[:TAG] (repeatable).
    #[arg(short, long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// A build argument, K=V (or K, taken from the environment).
    #[arg(long = "build-arg", value_name = "K[=V]")]
    pub build_args: Vec<String>,
    /// Build up to this stage.
    #[arg(long)]
    pub target: Option<String>,
    /// Ignore the build cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Network of RUN steps: private, none or host.
    #[arg(long, default_value = "private")]
    pub network: String,
    /// Print only the image id.
    #[arg(short, long)]
    pub quiet: bool,
    /// A label on the image, K=V (repeatable).
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Bind mount for every RUN step, HOST:CTR[:ro] (repeatable, as podman build has it).
    #[arg(short = 'v', long = "volume", value_name = "HOST:CTR[:ro]")]
    pub volumes: Vec<String>,
    /// Output: auto, plain (one line per step, for logs) or quiet (as -q).
    #[arg(long, default_value = "auto", value_name = "TYPE")]
    pub progress: String,
    /// Write the image id to this file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<String>,
    /// Pull base images: missing, always or never.
    #[arg(long, default_value = "missing", num_args = 0..=1, default_missing_value = "always")]
    pub pull: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

// `den history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    pub image: String,
    /// Do not shorten CREATED BY.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only image ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// table or a Go template (`{{.CreatedBy}}`).
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct RegistryFlags {
    /// Require HTTPS and verify certificates (false: plain HTTP for this registry).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
    /// Credentials for this call, `USER:PASSWORD`.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    pub image: String,
    /// Platform to pick from a multi-arch image, os/arch[/variant].
    #[arg(long)]
    pub platform: Option<String>,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only images of this repository[:tag].
    pub reference: Option<String>,
    /// Only image ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE,
    /// label=KEY[=VALUE] (repeat a key for either value; labels must all match).
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Output format: `table`, `json` or a Go template (`{{.ID}}`).
    #[arg(long)]
    pub format: Option<String>,
    /// Show full image ids.
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ImageCommand {
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Show images as JSON.
    Inspect {
        images: Vec<String>,
        /// Go template (`{{.State.Status}}`) for each, or json.
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// Remove images no name points to (-a: all images not in use).
    Prune {
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        force: bool,
    },
    /// Remove images.
    Rm(RmiArgs),
    /// Download an image.
    Pull(PullArgs),
    /// Upload an image.
    Push(PushArgs),
    /// Give an image another name.
    Tag { source: String, target: String },
    /// Write images to a tar.
    Save(SaveArgs),
    /// Read images from a tar or layout.
    Load(LoadArgs),
    /// Exit 0 when the image is in the store, 1 when not; prints nothing.
    Exists { image: String },
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    #[arg(required_unless_present = "all")]
    pub images: Vec<String>,
    /// Every image (those containers use are refused, or only untagged with -f).
    #[arg(short, long, conflicts_with = "images")]
    pub all: bool,
    /// Remove an image with several names, and keep going past missing ones.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum VolumeCommand {
    /// Create a volume (a random name when none is given); prints its name.
    Create {
        name: Option<String>,
        #[command(flatten)]
        labels: LabelFlags,
    },
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        /// Only volume names.
        #[arg(short, long)]
        quiet: bool,
        /// name=…, dangling=true|false, driver=local, label=KEY[=VALUE].
        #[arg(short, long, value_name = "KEY=VALUE")]
        filter: Vec<String>,
        /// Output format: `table`, `json` or a Go template (`{{.ID}}`).
        #[arg(long)]
        format: Option<String>,
    },
    /// Show volumes as JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
        /// Go template (`{{.State.Status}}`) for each, or json.
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// Remove volumes (refused while a container uses one).
    #[command(alias = "remove")]
    Rm {
        /// Keep going past volumes that do not exist.
        #[arg(short, long)]
        force: bool,
        /// Every volume (refused, removing none, while a container uses one).
        #[arg(short, long, conflicts_with = "names")]
        all: bool,
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
    },
    /// Exit 0 when the volume exists, 1 when not; prints nothing.
    Exists { name: String },
    /// Remove anonymous volumes no container uses (-a: every unused volume).
    Prune {
        /// Also named volumes, not only anonymous ones (`-v /path`).
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Output file (default: standard output, if it is not a terminal).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Tar file or OCI layout directory (default: standard input).
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    pub image: String,
    /// Where to push (default: the image's name).
    pub destination: Option<String>,
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Registry host[:port] (default docker.io).
    pub registry: Option<String>,
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum BuilderCommand {
    /// Remove build cache whose layers no image uses (-a: all of it, with
    /// the RUN cache mounts and the context hash memo).
    Prune {
        /// All build cache, not only the dangling records.
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum SystemCommand {
    /// Check the rootless prerequisites, one line each.
    Check {
        #[arg(long)]
        format: Option<String>,
    },
    /// Disk usage of the store.
    Df {
        /// table, json or a Go template (`{{.Type}} {{.Size}}`).
        #[arg(long)]
        format: Option<String>,
    },
    /// Remove stopped containers, unused networks, dangling images (-a: all
    /// unused images) and, with --volumes, unused anonymous volumes.
    Prune {
        /// All images without a container, not only dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Also anonymous volumes no container uses.
        #[arg(long)]
        volumes: bool,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct RunArgs {
    /// Run in the background and print the container id.
    #[arg(short, long)]
    pub detach: bool,
    /// Restart policy: no, on-failure[:N], always, unless-stopped.
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Name of the container.
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub terminal: crate::run_flags::TerminalFlags,
    /// Keys that detach from the container's terminal, leaving it running
    /// (default ctrl-p,ctrl-q).
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    #[command(flatten)]
    pub process: crate::run_flags::ProcessFlags,
    /// Read environment variables from a file.
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Set a label on the container (KEY=VALUE, or KEY for an empty value).
    #[arg(short = 'l', long = "label", value_name = "KEY[=VALUE]")]
    pub labels: Vec<String>,
    /// Read labels from a file (KEY=VALUE lines; `#` comments).
    #[arg(long, value_name = "FILE")]
    pub label_file: Vec<PathBuf>,
    /// Container host name.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Override the image's entrypoint.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Run a minimal init as PID 1 that reaps zombies and forwards signals.
    #[arg(long)]
    pub init: bool,
    /// Bind mount or named volume: HOST-PATH|NAME:CONTAINER-PATH[:ro|rw].
    #[arg(short, long = "volume", value_name = "SRC:DST[:OPTS]")]
    pub volumes: Vec<String>,
    /// Mount: type=bind|volume|tmpfs,source=…,target=…[,readonly].
    #[arg(long = "mount", value_name = "SPEC")]
    pub mounts: Vec<String>,
    /// Mount a tmpfs: PATH[:OPTIONS].
    #[arg(long, value_name = "PATH[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Use a directory as the (read-only) root filesystem instead of an image.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Network: private (default: own namespace, outbound access and DNS
    /// through pasta, host loopback closed), none, host, container:NAME, or
    /// a user network; repeat for several user networks (eth0, eth1, …;
    /// the first has the default route), `name=NET,alias=A` for aliases on
    /// one of them.
    #[arg(long, alias = "net", default_value = "private")]
    pub network: Vec<String>,
    /// Publish a port: [IP:][HOSTPORT:]CTRPORT[/tcp|/udp], ranges allowed.
    #[arg(short, long = "publish", value_name = "PORTS")]
    pub publish: Vec<String>,
    /// Publish every port the image EXPOSEs, on random host ports.
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// DNS server for the container's /etc/resolv.conf.
    #[arg(long)]
    pub dns: Vec<String>,
    /// Another name for the container on its user networks (all of them).
    #[arg(long)]
    pub network_alias: Vec<String>,
    /// Add NAME:IP to /etc/hosts; IP `host-gateway` is the host, and opens the
    /// host's loopback services to the container.
    #[arg(long, value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// Add a capability (or ALL).
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop a capability (or ALL).
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// All capabilities of the user namespace, no seccomp, no masked paths.
    #[arg(long)]
    pub privileged: bool,
    /// seccomp=unconfined, landlock=off, no-new-privileges[=true|false];
    /// label=disable is accepted (compose files use it) and does nothing:
    /// den sets no SELinux labels.
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// When to pull the image: missing, always, never.
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Pass file descriptors 3..3+N on to the container.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// User namespace mode: keep-id maps your uid to the same uid inside.
    #[arg(long)]
    pub userns: Option<String>,
    /// Platform to pull, os/arch[/variant].
    #[arg(long)]
    pub platform: Option<String>,
    #[command(flatten)]
    pub health: HealthFlags,
    #[command(flatten)]
    pub resources: ResourceFlags,
    /// Signal `den stop` sends first (default: the image's, else TERM).
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Seconds `den stop` waits before SIGKILL (default 10).
    #[arg(long, value_name = "SECONDS")]
    pub stop_timeout: Option<u64>,
    /// Where the container's output goes: json-file (default), k8s-file,
    /// none (kept nowhere) or passthrough (den's own stdout and stderr).
    #[arg(long, value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// max-size=SIZE (rotate past it, default 10m), max-file=N (files
    /// kept, default 2); comma-separated or repeated.
    #[arg(long = "log-opt", value_name = "K=V")]
    pub log_opts: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryFlags,
    /// The image, then the command and its arguments (with --rootfs: only
    /// the command). Everything after the image is the command's, flags
    /// too, as in Docker (`den run --entrypoint sh IMAGE -c 'echo hi'`):
    /// one positional, because clap stops reading flags only inside the
    /// trailing one.
    #[arg(value_name = "IMAGE [COMMAND [ARG...]]", trailing_var_arg = true)]
    pub image_and_command: Vec<String>,
}

impl RunArgs {
    /// The first word after the flags: the image (with --rootfs, the
    /// command's first word).
    pub fn image(&self) -> Option<&str> {
        self.image_and_command.first().map(String::as_str)
    }

    /// What follows the image.
    pub fn command(&self) -> &[String] {
        self.image_and_command.get(1..).unwrap_or_default()
    }

    /// Replaces what follows the image.
    pub fn set_command(&mut self, command: &[String]) {
        self.image_and_command.truncate(1);
        self.image_and_command.extend(command.iter().cloned());
    }
}

// `den run`'s resource limits: `--ulimit` everywhere (setrlimit), the
// others through a delegated cgroup v2 subtree (see `crate::resources`).
#[derive(Debug, Args, Default)]
pub struct ResourceFlags {
    /// Memory limit (e.g. 512m, 1g; bytes without a unit).
    #[arg(short = 'm', long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap; default twice --memory).
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs (e.g. 1.5).
    #[arg(long, value_name = "N")]
    pub cpus: Option<String>,
    /// CPU shares, relative weight (default 1024).
    #[arg(short = 'c', long, value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// CPUs the container may run on (e.g. 0-2,4).
    #[arg(long, value_name = "CPUS")]
    pub cpuset_cpus: Option<String>,
    /// Largest number of processes (-1: unlimited).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Resource limit: NAME=SOFT[:HARD] (nofile, nproc, core, stack, …; unlimited or -1).
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
}

// `den run`'s health check flags (they override the image's HEALTHCHECK
// field by field).
#[derive(Debug, Args, Default)]
pub struct HealthFlags {
    /// Command to run to check health (with /bin/sh -c).
    #[arg(long, value_name = "COMMAND")]
    pub health_cmd: Option<String>,
    /// Time between checks (e.g. 30s, 1m).
    #[arg(long, value_name = "DURATION")]
    pub health_interval: Option<String>,
    /// Longest time one check may run.
    #[arg(long, value_name = "DURATION")]
    pub health_timeout: Option<String>,
    /// Failures in a row that make the container unhealthy.
    #[arg(long, value_name = "N")]
    pub health_retries: Option<i64>,
    /// Time to start during which failures do not count.
    #[arg(long, value_name = "DURATION")]
    pub health_start_period: Option<String>,
    /// Time between checks during the start period.
    #[arg(long, value_name = "DURATION")]
    pub health_start_interval: Option<String>,
    /// Disable any health check, the image's included.
    #[arg(long)]
    pub no_healthcheck: bool,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum HealthcheckCommand {
    /// Run the check once: exit 0 when it passes, 1 (printing the status) when not.
    Run { container: String },
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default: running ones).
    #[arg(short, long)]
    pub all: bool,
    /// Only ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// name=…, status=created|running|exited|restarting, ancestor=IMAGE, id=…,
    /// label=KEY[=VALUE]
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// table, json or a Go template (`{{.Names}}`, `table {{.ID}}\t{{.Status}}`).
    #[arg(long)]
    pub format: Option<String>,
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    pub container: String,
    /// Keep following new output.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(short = 'n', long)]
    pub tail: Option<String>,
    /// Only output since a time (RFC 3339, Unix time) or duration (10m).
    #[arg(long)]
    pub since: Option<String>,
    /// Prefix each line with its time.
    #[arg(short, long)]
    pub timestamps: bool,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before SIGKILL (default: the container's
    /// --stop-timeout, else 10).
    #[arg(short, long)]
    pub time: Option<u64>,
    /// Every running container.
    #[arg(short, long, conflicts_with = "containers")]
    pub all: bool,
    #[arg(required_unless_present = "all")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Stop and remove running containers (SIGKILL at once unless -t).
    #[arg(short, long)]
    pub force: bool,
    /// With -f: stop a running container with its stop signal and wait
    /// this many seconds before SIGKILL.
    #[arg(short, long, value_name = "SECONDS")]
    pub time: Option<u64>,
    /// Also remove the container's anonymous volumes (`-v /path`) no other
    /// container uses.
    #[arg(short, long)]
    pub volumes: bool,
    /// Every container (running ones only with -f).
    #[arg(short, long, conflicts_with = "containers")]
    pub all: bool,
    #[arg(required_unless_present = "all")]
    pub containers: Vec<String>,
}

// `den commit`.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// A Dockerfile instruction applied to the config: CMD, ENTRYPOINT,
    /// ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME or STOPSIGNAL (repeatable).
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Commit message (the history entry's comment).
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author of the image.
    #[arg(short, long)]
    pub author: Option<String>,
    /// Pause a running container during the commit: refused, den cannot
    /// pause (no freezer); false (the default, as podman's) reads it as it
    /// runs.
    #[arg(
        short,
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub pause: Option<bool>,
    pub container: String,
    /// NAME[:TAG] for the image (none: an untagged image).
    pub image: Option<String>,
}

#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    #[command(flatten)]
    pub terminal: crate::run_flags::TerminalFlags,
    #[command(flatten)]
    pub process: crate::run_flags::ProcessFlags,
    pub container: String,
    #[arg(required = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ContainerCommand {
    /// List containers.
    #[command(alias = "list")]
    Ls(PsArgs),
    /// Remove all stopped containers.
    Prune {
        #[arg(short, long)]
        force: bool,
    },
    /// Remove containers.
    Rm(RmArgs),
    /// Show containers as JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
        /// Go template (`{{.State.Status}}`) for each, or json.
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// Exit 0 when the container exists, 1 when not; prints nothing.
    Exists { container: String },
    /// Make an image of a container's changes.
    Commit(CommitArgs),
}

// `--label`/`--label-file` of `volume create` and `network create`.
#[derive(Debug, Args, Default)]
pub struct LabelFlags {
    /// Set a label (KEY=VALUE, or KEY for an empty value).
    #[arg(short = 'l', long = "label", value_name = "KEY[=VALUE]")]
    pub labels: Vec<String>,
    /// Read labels from a file (KEY=VALUE lines; `#` comments).
    #[arg(long, value_name = "FILE")]
    pub label_file: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum NetworkCommand {
    /// Create a user network; prints its id.
    Create {
        name: String,
        #[command(flatten)]
        labels: LabelFlags,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
        /// name=…, id=…, driver=bridge, label=KEY[=VALUE].
        #[arg(short, long, value_name = "KEY=VALUE")]
        filter: Vec<String>,
        /// table, json or a Go template (`{{.Name}}`).
        #[arg(long)]
        format: Option<String>,
    },
    /// Show networks as JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
        /// Go template (`{{.State.Status}}`) for each, or json.
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// Remove networks (refused while containers use them).
    #[command(alias = "remove")]
    Rm {
        /// Do not fail on networks that do not exist (Docker's meaning).
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Connect a container to a network (a running one gets a new interface now).
    Connect {
        /// A name the container also has on this network (repeatable).
        #[arg(long = "alias", value_name = "ALIAS")]
        aliases: Vec<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network.
    Disconnect {
        /// Remove the container's place on the network even when its
        /// interface cannot be removed (its supervisor is gone).
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
    /// Exit 0 when the network exists, 1 when not; prints nothing.
    Exists { name: String },
    /// Remove networks no container uses.
    Prune {
        #[arg(short, long)]
        force: bool,
    },
}

/// Steps den runs in a child process inside its user namespace.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum InternalCommand {
    /// Write den's man pages (den.1, den-run.1, …) into DIR.
    Man { dir: PathBuf },
    /// Run a container from its spec file (the supervisor).
    Container {
        spec: PathBuf,
        /// Own session, output only to the log; prints "started" when running.
        #[arg(long)]
        detach: bool,
        /// stdin is a socket attached to the container's terminal.
        #[arg(long)]
        attach_stdin: bool,
    },
    /// Unpack a stored blob as a layer.
    Unpack { blob: String, diff_id: String },
    /// `den build`: writes an overlay upper directory as an OCI layer tar.
    CommitUpper {
        upper: String,
        out: String,
        /// `SOURCE_DATE_EPOCH`: clamp file times to it.
        #[arg(long)]
        epoch: Option<u64>,
        /// A RUN mount's target: its empty mount point is left out.
        #[arg(long = "mount-point")]
        mount_points: Vec<String>,
    },
    /// `den build`: `COPY --from`, files of a build container's root as a layer tar.
    CopyFrom {
        container: String,
        request: String,
        out: String,
    },
    /// Delete trashed layers and abandoned unpack directories.
    Purge,
    /// The infra process of a user network.
    NetworkInfra { name: String },
    /// The keeper of the user namespace that containers with the default
    /// mapping share (one per den root).
    UsernsKeeper,
    /// `den network connect|disconnect` of a running container: its
    /// interface on a network added or removed (a JSON request).
    NetworkWire { container: String, request: String },
    /// `den top`'s helper: lists the container's processes.
    Top { container: String },
    /// `den cp`'s container side: `stat PATH`, `in DIR` (tar on stdin), `out PATH` (tar on stdout).
    Cp {
        container: String,
        op: String,
        path: String,
    },
    /// Run a command in a running container (joins its namespaces).
    Exec { container: String, spec: String },
    /// Delete a container's directory (its files belong to subordinate ids).
    RemoveContainer { id: String },
    /// Delete removed volumes (`volumes/.rm-*`); prints the bytes freed.
    RemoveVolumes,
}

/// The whole command tree, every deferred subcommand expanded, for what
/// looks at it rather than parsing with it (completions, man pages, flag
/// lookups).
pub fn full_command() -> clap::Command {
    let mut cli = <Cli as clap::CommandFactory>::command();
    cli.build();
    cli
}

#[cfg(test)]
mod tests {
    /// Subcommands are built only when chosen (`defer`), and a deferred
    /// build applies the flattened structs' attributes after the variant's:
    /// a doc comment on an `Args` struct would then replace the command's
    /// own description. Such code comments start with a backtick; no
    /// user-facing description does.
    #[test]
    fn every_command_keeps_its_own_description() {
        fn walk(cmd: &clap::Command, path: &str, bad: &mut Vec<String>) {
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                let path = format!("{path} {}", sub.get_name());
                let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
                if about.starts_with('`') {
                    bad.push(format!("{path}: {about:?}"));
                }
                walk(sub, &path, bad);
            }
        }
        let cli = super::full_command();
        let mut bad = Vec::new();
        walk(&cli, "den", &mut bad);
        assert!(bad.is_empty(), "{bad:#?}");
        let run = cli.find_subcommand("run").expect("den run");
        assert_eq!(
            run.get_about().map(|a| a.to_string()).as_deref(),
            Some("Run a command in a new container")
        );
    }
}
