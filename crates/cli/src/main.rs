//! The `den` binary: parses flags with clap and calls the libraries.

mod cmd;

fn main() {}
