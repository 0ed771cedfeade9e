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
    /// Only these services (and what they depend on).
    pub services: Vec<String>,
}
