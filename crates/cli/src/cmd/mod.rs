//! One module per `den` command group; each turns parsed flags into library calls.

pub mod check;
pub mod unshare;
