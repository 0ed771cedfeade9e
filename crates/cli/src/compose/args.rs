//! `den compose` flags, as plain data (wired into `crate::args`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// Compose file (repeatable: later files merge over earlier ones;
    /// `-` reads standard input). Default: compose.yaml, compose.yml,
    /// docker-compose.yaml or docker-compose.yml here or in a parent.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<String>,
    /// Project name (default: COMPOSE_PROJECT_NAME, the top-level name:,
    /// or the compose file's directory).
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project: Option<String>,
    /// Variables for interpolation, instead of the `.env` next to the file.
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Enable services of this profile (repeatable; default COMPOSE_PROFILES).
    #[arg(long, value_name = "NAME")]
    pub profile: Vec<String>,
    #[command(subcommand)]
    pub command: ComposeCommand,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ComposeCommand {
    /// Print the resolved model as YAML.
    Config {
        /// Only the service names.
        #[arg(long)]
        services: bool,
        /// Only the volume names.
        #[arg(long)]
        volumes: bool,
        /// Only check; print nothing.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Create and start the project's containers.
    Up(UpArgs),
    /// Create the project's containers (and network, volumes, images)
    /// without starting them: `den compose start` starts them.
    Create(CreateArgs),
    /// Stop and remove the project's containers and networks.
    Down {
        /// Also remove the named volumes of the `volumes:` section.
        #[arg(short, long)]
        volumes: bool,
        /// Also remove containers of services no longer in the file.
        #[arg(long)]
        remove_orphans: bool,
        /// Seconds to wait for each container to stop before SIGKILL.
        #[arg(short, long)]
        timeout: Option<u64>,
    },
    /// List the project's containers.
    Ps {
        /// Also stopped ones.
        #[arg(short, long)]
        all: bool,
        /// Only ids.
        #[arg(short, long)]
        quiet: bool,
        /// table or json.
        #[arg(long)]
        format: Option<String>,
        /// Only these services.
        services: Vec<String>,
    },
    /// Show the services' output, each line prefixed with its container.
    Logs {
        /// Keep following new output.
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines of each container.
        #[arg(short = 'n', long)]
        tail: Option<String>,
        /// Prefix each line with its time.
        #[arg(short, long)]
        timestamps: bool,
        /// Only these services.
        services: Vec<String>,
    },
    /// Build the images of services with `build:`.
    Build {
        /// Only these services.
        services: Vec<String>,
    },
    /// Pull the images of services with `image:` (and no `build:`).
    Pull {
        /// Only these services.
        services: Vec<String>,
    },
    /// Run a command in a service's running container.
    Exec(ExecArgs),
    /// Run a one-off command in a new container of a service.
    Run(RunArgs),
    /// Start the services' existing containers.
    Start { services: Vec<String> },
    /// Stop the services' containers.
    Stop {
        /// Seconds to wait before SIGKILL.
        #[arg(short, long)]
        timeout: Option<u64>,
        services: Vec<String>,
    },
    /// Stop and start the services' containers.
    Restart {
        /// Seconds to wait before SIGKILL.
        #[arg(short, long)]
        timeout: Option<u64>,
        services: Vec<String>,
    },
    /// Send a signal to the services' containers.
    Kill {
        /// Signal name or number.
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        services: Vec<String>,
    },
    /// Remove the services' stopped containers.
    Rm {
        /// Stop them first.
        #[arg(short, long)]
        stop: bool,
        /// Do not ask (den never asks here; accepted for docker's scripts).
        #[arg(short, long)]
        force: bool,
        services: Vec<String>,
    },
    /// Print the host address a service's port is published on.
    Port {
        /// Which container of the service.
        #[arg(long, default_value_t = 1)]
        index: u32,
        /// tcp or udp.
        #[arg(long, default_value = "tcp")]
        protocol: String,
        service: String,
        private_port: u16,
    },
    /// Show the processes of the services' running containers.
    Top { services: Vec<String> },
    /// Push the images of services with both `build:` and `image:`.
    Push {
        /// Go on past an image that fails to push (a warning each).
        #[arg(long)]
        ignore_push_failures: bool,
        /// No progress output.
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        registry: crate::args::RegistryFlags,
        services: Vec<String>,
    },
    /// List the images the project's containers use.
    Images {
        /// Only ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// List the projects that have containers.
    Ls {
        /// Also projects whose containers are all stopped.
        #[arg(short, long)]
        all: bool,
        /// Only names.
        #[arg(short, long)]
        quiet: bool,
        /// table or json.
        #[arg(long)]
        format: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// No terminal (the default when standard input is not one).
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    #[command(flatten)]
    pub process: crate::run_flags::ProcessFlags,
    /// Which container of the service.
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    pub service: String,
    #[arg(required = true, allow_hyphen_values = true, trailing_var_arg = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Start in the background and print the container id.
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub process: crate::run_flags::ProcessFlags,
    /// Name of the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Publish the service's ports too.
    #[arg(long)]
    pub service_ports: bool,
    /// Do not start the services it depends on.
    #[arg(long)]
    pub no_deps: bool,
    /// No terminal (the default when standard input is not one).
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    pub service: String,
    #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Recreate containers even if unchanged.
    #[arg(long)]
    pub force_recreate: bool,
    /// Never recreate existing containers.
    #[arg(long, conflicts_with = "force_recreate")]
    pub no_recreate: bool,
    /// Remove containers of services no longer in the file.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Build images first (default: only missing ones).
    #[arg(long)]
    pub build: bool,
    /// Never build; a missing image is an error.
    #[arg(long, conflicts_with = "build")]
    pub no_build: bool,
    /// Run N containers of SERVICE (over its scale:/deploy.replicas).
    #[arg(long, value_name = "SERVICE=N")]
    pub scale: Vec<String>,
    /// Only these services (and what they depend on).
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Start in the background and return.
    #[arg(short, long)]
    pub detach: bool,
    /// Recreate containers even if unchanged.
    #[arg(long)]
    pub force_recreate: bool,
    /// Never recreate existing containers.
    #[arg(long, conflicts_with = "force_recreate")]
    pub no_recreate: bool,
    /// Remove containers of services no longer in the file.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Seconds to wait for a container to stop when it is recreated.
    #[arg(short, long)]
    pub timeout: Option<u64>,
    /// Build images before starting (default: only missing ones).
    #[arg(long)]
    pub build: bool,
    /// Never build; a missing image is an error.
    #[arg(long, conflicts_with = "build")]
    pub no_build: bool,
    /// Wait until the services run (and are healthy, with a health
    /// check); implies -d.
    #[arg(long)]
    pub wait: bool,
    /// Seconds --wait waits.
    #[arg(long, default_value_t = 120)]
    pub wait_timeout: u64,
    /// Attached: stop every container when one exits; exit with its code.
    #[arg(long, conflicts_with = "detach")]
    pub abort_on_container_exit: bool,
    /// Run N containers of SERVICE (over its scale:/deploy.replicas).
    #[arg(long, value_name = "SERVICE=N")]
    pub scale: Vec<String>,
    /// Only these services (and what they depend on).
    pub services: Vec<String>,
}
