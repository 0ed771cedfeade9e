//! One module per `den` command group; each turns parsed flags into library calls.

pub mod archive;
pub mod check;
pub mod images;
pub mod internal;
pub mod login;
pub mod pull;
pub mod push;
pub mod run;
mod run_flags;
mod supervise;
pub mod unshare;
