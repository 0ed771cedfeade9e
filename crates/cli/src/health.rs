//! Health checks on the cli's side: `den run`'s `--health-*` flags merged
//! with the image's HEALTHCHECK (Docker's rules), and the health shown by
//! `den ps` and `den inspect` (`den healthcheck run` is `cmd/health.rs`). The checks
//! themselves run in each container's supervisor
//! (`den_sandbox::container::health`).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use den_sandbox::container::health::{self, Check, Health, Test};
use den_sandbox::container::state::{State, Status};

use crate::args::HealthFlags;

/// An image config's `Healthcheck`, fields as given (0 or absent: unset).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ImageHealth {
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

impl ImageHealth {
    /// From the image config JSON (`config.Healthcheck`); `Err` says what
    /// is malformed. The image is not trusted: types and signs are checked.
    pub fn from_config(config: &serde_json::Value) -> Result<Option<Self>, String> {
        let h = &config["config"]["Healthcheck"];
        if h.is_null() {
            return Ok(None);
        }
        let test = match &h["Test"] {
            serde_json::Value::Null => Vec::new(),
            serde_json::Value::Array(a) => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or("Test must be a list of strings")?,
            _ => return Err("Test must be a list of strings".into()),
        };
        let ns = |k: &str| match &h[k] {
            serde_json::Value::Null => Ok(None),
            v => v
                .as_u64()
                .map(|n| (n > 0).then(|| Duration::from_nanos(n)))
                .ok_or(format!("{k} must be a non-negative number of nanoseconds")),
        };
        let retries = match &h["Retries"] {
            serde_json::Value::Null => None,
            v => Some(
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or("Retries must be a small non-negative number")?,
            )
            .filter(|&n| n > 0),
        };
        Ok(Some(Self {
            test,
            interval: ns("Interval")?,
            timeout: ns("Timeout")?,
            start_period: ns("StartPeriod")?,
            start_interval: ns("StartInterval")?,
            retries,
        }))
    }
}

fn duration_flag(name: &str, v: &Option<String>) -> anyhow::Result<Option<Duration>> {
    let Some(s) = v else { return Ok(None) };
    let d = match den_duration::parse_std(s) {
        Ok(d) => d,
        Err(den_duration::ParseError::Negative(_)) => {
            bail!("invalid --{name} `{s}`: it cannot be negative")
        }
        Err(_) => bail!("invalid --{name} `{s}`: use a duration like 30s, 1m30s or 500ms"),
    };
    if !d.is_zero() && d < Duration::from_millis(1) {
        bail!("invalid --{name} `{s}`: it cannot be less than 1ms");
    }
    Ok(Some(d).filter(|d| !d.is_zero()))
}

/// The container's check: the flags override the image's HEALTHCHECK field
/// by field; `--no-healthcheck` (or `NONE`) means none.
pub fn check(flags: &HealthFlags, image: Option<&ImageHealth>) -> anyhow::Result<Option<Check>> {
    let interval = duration_flag("health-interval", &flags.health_interval)?;
    let timeout = duration_flag("health-timeout", &flags.health_timeout)?;
    let start_period = duration_flag("health-start-period", &flags.health_start_period)?;
    let start_interval = duration_flag("health-start-interval", &flags.health_start_interval)?;
    let retries = match flags.health_retries {
        Some(n) if n < 0 => bail!("invalid --health-retries `{n}`: it cannot be negative"),
        Some(n) => Some(u32::try_from(n).context("--health-retries is too large")?),
        None => None,
    }
    .filter(|&n| n > 0);
    let any = flags.health_cmd.is_some()
        || interval.is_some()
        || timeout.is_some()
        || start_period.is_some()
        || start_interval.is_some()
        || retries.is_some();
    if flags.no_healthcheck {
        if any {
            bail!("--no-healthcheck conflicts with --health-* options: give one or the other");
        }
        return Ok(None);
    }
    let base = image.cloned().unwrap_or_default();
    let test = match &flags.health_cmd {
        Some(cmd) if cmd.is_empty() => bail!("--health-cmd is empty: give a command to run"),
        Some(cmd) => health::Command::Shell(cmd.clone()),
        None => match Test::parse(&base.test) {
            Ok(Test::Run(argv)) => argv,
            Ok(Test::Inherit | Test::Disabled) => return Ok(None),
            Err(why) => {
                crate::log::warn(format_args!("the image's HEALTHCHECK is ignored: {why}"));
                return Ok(None);
            }
        },
    };
    Ok(Some(Check {
        test,
        interval: interval
            .or(base.interval)
            .unwrap_or(health::DEFAULT_INTERVAL),
        timeout: timeout.or(base.timeout).unwrap_or(health::DEFAULT_TIMEOUT),
        start_period: start_period.or(base.start_period).unwrap_or_default(),
        start_interval: start_interval
            .or(base.start_interval)
            .unwrap_or(health::DEFAULT_START_INTERVAL),
        retries: retries.or(base.retries).unwrap_or(health::DEFAULT_RETRIES),
    }))
}

/// The health of a running container (`None` without a check or when it
/// does not run).
pub fn of(dir: &Path, state: &State) -> Option<Health> {
    (state.status == Status::Running)
        .then(|| health::read(dir))
        .flatten()
}

/// `den ps`'s STATUS suffix: ` (healthy)`, ` (unhealthy)`, ` (health: starting)`.
pub fn ps_suffix(health: Option<&Health>) -> String {
    match health.map(|h| h.status) {
        None => String::new(),
        Some(health::Status::Starting) => " (health: starting)".into(),
        Some(s) => format!(" ({})", s.as_str()),
    }
}

/// `Config.Healthcheck` of `den inspect`, in Docker's form (durations in
/// nanoseconds), from the spec's check; null without one.
pub fn config_json(check: Option<&Check>) -> serde_json::Value {
    let Some(c) = check else {
        return serde_json::Value::Null;
    };
    let ns = den_duration::to_go;
    serde_json::json!({
        "Test": c.test.docker_test(),
        "Interval": ns(c.interval), "Timeout": ns(c.timeout),
        "StartPeriod": ns(c.start_period), "StartInterval": ns(c.start_interval),
        "Retries": c.retries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> HealthFlags {
        HealthFlags::default()
    }

    #[test]
    fn flags_override_the_image_field_by_field() {
        let image = ImageHealth::from_config(&serde_json::json!({"config": {"Healthcheck": {
            "Test": ["CMD", "probe"], "Interval": 2_000_000_000u64, "Retries": 7
        }}}))
        .unwrap()
        .unwrap();
        let c = check(&flags(), Some(&image)).unwrap().unwrap();
        assert_eq!(c.test, health::Command::Exec(vec!["probe".into()]));
        assert_eq!(c.interval, Duration::from_secs(2));
        assert_eq!((c.retries, c.timeout), (7, health::DEFAULT_TIMEOUT));
        let f = HealthFlags {
            health_interval: Some("500ms".into()),
            health_cmd: Some("true".into()),
            ..flags()
        };
        let c = check(&f, Some(&image)).unwrap().unwrap();
        assert_eq!(c.test, health::Command::Shell("true".into()));
        assert_eq!((c.interval, c.retries), (Duration::from_millis(500), 7));
        let off = HealthFlags {
            no_healthcheck: true,
            ..flags()
        };
        assert_eq!(check(&off, Some(&image)).unwrap(), None);
        assert_eq!(check(&flags(), None).unwrap(), None);
    }

    #[test]
    fn bad_flags_and_configs_are_named() {
        let e = |f: HealthFlags| check(&f, None).unwrap_err().to_string();
        assert_eq!(
            e(HealthFlags {
                health_interval: Some("5".into()),
                ..flags()
            }),
            "invalid --health-interval `5`: use a duration like 30s, 1m30s or 500ms"
        );
        assert_eq!(
            e(HealthFlags {
                health_retries: Some(-1),
                ..flags()
            }),
            "invalid --health-retries `-1`: it cannot be negative"
        );
        assert_eq!(
            e(HealthFlags {
                health_timeout: Some("-1s".into()),
                ..flags()
            }),
            "invalid --health-timeout `-1s`: it cannot be negative"
        );
        assert_eq!(
            e(HealthFlags {
                no_healthcheck: true,
                health_cmd: Some("x".into()),
                ..flags()
            }),
            "--no-healthcheck conflicts with --health-* options: give one or the other"
        );
        let bad = |h: serde_json::Value| {
            ImageHealth::from_config(&serde_json::json!({"config": {"Healthcheck": h}})).is_err()
        };
        assert!(bad(serde_json::json!({"Test": "CMD true"})));
        assert!(bad(serde_json::json!({"Test": [1]})));
        assert!(bad(serde_json::json!({"Interval": -5})));
        assert!(bad(serde_json::json!({"Retries": 1u64 << 40})));
    }
}
