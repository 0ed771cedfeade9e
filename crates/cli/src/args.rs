//! Command-line flags, as plain data. Validation into library specs happens
//! in the command modules.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "den",
    version,
    about = "Rootless containers: pull, run and build images without root or a daemon"
)]
pub struct Cli {
    /// Store directory (default: $XDG_DATA_HOME/den).
    #[arg(long, global = true, env = "DEN_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    #[command(subcommand, hide = true, name = "__internal")]
    Internal(InternalCommand),
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
    /// Output format: `table` or `json`.
    #[arg(long)]
    pub format: Option<String>,
    /// Show full image ids.
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Show images as JSON.
    Inspect { images: Vec<String> },
    /// Remove images no name points to (-a: all images not in use).
    Prune {
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation (den never asks).
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
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove an image with several names, and keep going past missing ones.
    #[arg(short, long)]
    pub force: bool,
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
pub enum SystemCommand {
    /// Check the rootless prerequisites, one line each.
    Check {
        #[arg(long)]
        format: Option<String>,
    },
    /// Disk usage of the store.
    Df,
}

/// Steps den runs in a child process inside its user namespace.
#[derive(Debug, Subcommand)]
pub enum InternalCommand {
    /// Unpack a stored blob as a layer.
    Unpack { blob: String, diff_id: String },
    /// Delete trashed layers and abandoned unpack directories.
    Purge,
}
