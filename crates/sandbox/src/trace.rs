//! `DEN_TRACE=1`: one line per start-up phase on stderr, so users and
//! benchmarks can see where a `den run` spends its time.
//!
//! ```text
//! den: trace: parse        0.41 ms  (+0.41)   pid 4711
//! den: trace: store        0.93 ms  (+0.52)   pid 4711
//! ```
//!
//! Each line marks the end of the phase it names: the time since the first
//! den of the run started, and (in brackets) how long the phase took. The
//! phases cross processes: the CLI passes its origin and its last mark to
//! the supervisor in [`ORIGIN_VAR`], and the container process inherits the
//! supervisor's by fork. The clock is CLOCK_MONOTONIC, the same in all of
//! them. Lines go to a close-on-exec copy of the stderr den started with
//! (the container's own stderr may be a pipe to its log by then), one
//! `write` each.
//!
//! A note (`den: trace note: …`) says why a phase took the way it did, such
//! as a `--rootfs` tree built at start rather than taken from the keeper.
//!
//! Off (the default), a phase costs one load of an initialised `OnceLock`.
//! `den --log-level debug` turns it on too ([`force_on`], before the first
//! mark); the den processes it starts then get [`VAR`] from
//! [`child_env`].

use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The variable that turns tracing on (any value but empty or `0`).
pub const VAR: &str = "DEN_TRACE";
/// Set by den for the den it starts: `ORIGIN_NS:LAST_MARK_NS`.
pub const ORIGIN_VAR: &str = "DEN_TRACE_T0";

struct Tracer {
    /// `None` once [`stop`] closed it.
    out: std::sync::Mutex<Option<OwnedFd>>,
    origin: u64,
    last: AtomicU64,
}

static TRACER: OnceLock<Option<Tracer>> = OnceLock::new();
/// When this den started ([`init`]).
static T0: OnceLock<u64> = OnceLock::new();
static FORCED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// `origin:last` from [`ORIGIN_VAR`], if it holds two numbers.
fn parse_origin(v: &str) -> Option<(u64, u64)> {
    let (a, b) = v.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Whether `value` of [`VAR`] turns tracing on.
fn wanted(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

impl Tracer {
    /// One line, one `write`, unless [`stop`] closed the output.
    fn write(&self, line: &str) {
        if let Ok(out) = self.out.lock()
            && let Some(fd) = out.as_ref()
        {
            rustix::io::write(fd, line.as_bytes()).ok();
        }
    }
}

fn tracer() -> Option<&'static Tracer> {
    TRACER.get_or_init(start).as_ref()
}

fn start() -> Option<Tracer> {
    let now = *T0.get_or_init(now_ns);
    if !FORCED.load(Ordering::Relaxed) && !wanted(std::env::var(VAR).ok().as_deref()) {
        return None;
    }
    let (origin, last) = std::env::var(ORIGIN_VAR)
        .ok()
        .and_then(|v| parse_origin(&v))
        .unwrap_or((now, now));
    let out = rustix::io::fcntl_dupfd_cloexec(std::io::stderr(), 3).ok()?;
    Some(Tracer {
        out: std::sync::Mutex::new(Some(out)),
        origin,
        last: AtomicU64::new(last),
    })
}

/// Fixes the origin: call first thing in `main`, so the first phase counts
/// from there. Whether tracing is on is decided at the first mark.
pub fn init() {
    T0.get_or_init(now_ns);
}

/// Traces this process whatever [`VAR`] says (`--log-level debug`); call
/// before the first [`phase`].
pub fn force_on() {
    FORCED.store(true, Ordering::Relaxed);
}

/// Whether tracing is on in this process.
pub fn enabled() -> bool {
    tracer().is_some()
}

/// The value of [`ORIGIN_VAR`] for a den this one starts now, when tracing.
pub fn child_origin() -> Option<String> {
    let t = tracer()?;
    Some(format!("{}:{}", t.origin, now_ns()))
}

/// What a den this one starts needs in its environment to trace too:
/// [`VAR`] and [`ORIGIN_VAR`], when tracing.
pub fn child_env() -> Vec<(&'static str, String)> {
    match child_origin() {
        Some(origin) => vec![(VAR, "1".into()), (ORIGIN_VAR, origin)],
        None => Vec::new(),
    }
}

/// The descriptor trace lines go to, when tracing: a process forked from
/// this one (`sys::fork_clean`) points it at its own stderr, as a fresh den
/// would dup its stderr.
pub fn out_fd() -> Option<std::os::fd::RawFd> {
    use std::os::fd::AsRawFd;
    let out = tracer()?.out.lock().ok()?;
    out.as_ref().map(|fd| fd.as_raw_fd())
}

/// No more lines from this process, and its copy of the stderr it started
/// with closed: a background den that has let go of its starter's pipes
/// (`container::announce`) must not keep the one its lines went to.
pub fn stop() {
    if let Some(mut out) = tracer().and_then(|t| t.out.lock().ok()) {
        out.take();
    }
}

/// Marks the end of `phase`: prints its line when tracing, else nothing.
pub fn phase(phase: &str) {
    let Some(t) = tracer() else {
        return;
    };
    let now = now_ns();
    let prev = t.last.swap(now, Ordering::Relaxed);
    let line = format_line(
        phase,
        now.saturating_sub(t.origin),
        now.saturating_sub(prev),
    );
    t.write(&line);
}

/// A line that explains a phase, when tracing: `den: trace note: WHAT`
/// (not `den: trace: `, whose lines are phases, one format).
pub fn note(what: &str) {
    if let Some(t) = tracer() {
        t.write(&format!("den: trace note: {what}\n"));
    }
}

fn format_line(phase: &str, total_ns: u64, delta_ns: u64) -> String {
    let ms = |ns: u64| ns as f64 / 1e6;
    format!(
        "den: trace: {phase:<9} {:>8.2} ms  (+{:.2})   pid {}\n",
        ms(total_ns),
        ms(delta_ns),
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_turn_it_on() {
        assert!(wanted(Some("1")));
        assert!(wanted(Some("yes")));
        assert!(!wanted(Some("0")));
        assert!(!wanted(Some("")));
        assert!(!wanted(None));
    }

    #[test]
    fn origin_round_trip_and_bad_values() {
        assert_eq!(parse_origin("12:34"), Some((12, 34)));
        assert_eq!(parse_origin("12"), None);
        assert_eq!(parse_origin("a:1"), None);
    }

    #[test]
    fn line_format() {
        let l = format_line("mounts", 2_500_000, 1_250_000);
        assert!(
            l.starts_with("den: trace: mounts        2.50 ms  (+1.25)   pid "),
            "{l}"
        );
        assert!(l.ends_with('\n'));
    }
}
