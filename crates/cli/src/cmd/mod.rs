//! One module per `den` command group; each turns parsed flags into library calls.

pub mod archive;
pub mod attach;
pub mod build;
pub mod check;
pub mod confirm;
pub mod cp;
mod cp_tar;
pub mod exec;
pub mod health;
pub mod history;
pub mod images;
pub mod internal;
pub mod lifecycle;
pub mod login;
pub mod network;
pub mod ps;
pub mod pull;
pub mod push;
pub mod run;
mod run_flags;
pub mod supervise;
pub mod unshare;
pub mod volumes;
