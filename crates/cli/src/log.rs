//! `--log-level`: how much den says on stderr besides its errors.
//!
//! | level | stderr |
//! |---|---|
//! | `error` | errors only (a failing command's one line) |
//! | `warn` (default) | and warnings (`den: warning: …`) |
//! | `info` | and notes on what den decided (`den: info: …`) |
//! | `debug` | and each step den takes (`den: debug: …`), with the step timings of `DEN_TRACE=1` (`den_sandbox::trace`), the supervisor's included |
//!
//! The level is set once, right after the flags are parsed ([`init`]);
//! `debug` turns on the step timer, which counts from den's start all the
//! same. Errors are printed whatever the level.

use std::fmt::Arguments;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

static LEVEL: OnceLock<Level> = OnceLock::new();

fn parse(v: &str) -> Option<Level> {
    match v {
        "error" => Some(Level::Error),
        "warn" | "warning" => Some(Level::Warn),
        "info" => Some(Level::Info),
        "debug" => Some(Level::Debug),
        _ => None,
    }
}

/// Sets the level from `--log-level` (before the first step mark, so
/// that `debug` turns the step timer on from den's start).
pub fn init(given: Option<&str>) {
    let level = *LEVEL.get_or_init(|| given.and_then(parse).unwrap_or(Level::Warn));
    if level == Level::Debug {
        den_sandbox::trace::force_on();
    }
}

pub fn level() -> Level {
    LEVEL.get().copied().unwrap_or(Level::Warn)
}

pub fn warn(msg: Arguments) {
    if level() >= Level::Warn {
        eprintln!("den: warning: {msg}");
    }
}

pub fn info(msg: Arguments) {
    if level() >= Level::Info {
        eprintln!("den: info: {msg}");
    }
}

pub fn debug(msg: Arguments) {
    if level() >= Level::Debug {
        eprintln!("den: debug: {msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_their_order() {
        assert_eq!(parse("debug"), Some(Level::Debug));
        assert_eq!(parse("warning"), Some(Level::Warn));
        assert_eq!(parse("loud"), None);
        assert!(Level::Debug > Level::Info && Level::Warn > Level::Error);
    }
}
