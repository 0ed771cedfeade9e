//! `den run --log-driver DRIVER --log-opt K=V[,K=V]…`, checked into the
//! spec's [`LogConfig`] (the drivers: `den_sandbox::container::logs`).

use anyhow::{Context as _, bail};
use den_sandbox::container::logs::{Driver, LogConfig, MAX_FILES_LIMIT};

use crate::args::RunArgs;

pub fn config(args: &RunArgs) -> anyhow::Result<LogConfig> {
    let mut config = LogConfig::default();
    if let Some(d) = &args.log_driver {
        config.driver = Driver::parse(d).with_context(|| {
            format!("unknown --log-driver `{d}`: use json-file, k8s-file, none or passthrough")
        })?;
    }
    let opts: Vec<&str> = args
        .log_opts
        .iter()
        .flat_map(|o| o.split(','))
        .filter(|o| !o.is_empty())
        .collect();
    if !opts.is_empty() && !config.driver.keeps_logs() {
        bail!(
            "--log-opt applies to the json-file and k8s-file drivers, not to {}",
            config.driver.name()
        );
    }
    for o in opts {
        match o.split_once('=') {
            Some(("max-size", v)) => config.max_size = size(v)?,
            Some(("max-file", v)) => {
                config.max_file = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_FILES_LIMIT).contains(n))
                    .with_context(|| {
                        format!(
                            "invalid --log-opt max-file={v}: a number from 1 to {MAX_FILES_LIMIT}"
                        )
                    })?
            }
            _ => bail!("unsupported --log-opt `{o}`: den knows max-size=SIZE and max-file=N"),
        }
    }
    if config.driver == Driver::Passthrough {
        if args.detach {
            bail!(
                "--log-driver passthrough gives the container den's own output, so it cannot run detached: drop -d or use another driver"
            );
        }
        if args.terminal.tty {
            bail!(
                "--log-driver passthrough cannot be used with -t: a container sharing your terminal could type into it (TIOCSTI)"
            );
        }
    }
    Ok(config)
}

/// `10m`, `512k`, `1g`, or bytes (units of 1024, as Docker's).
fn size(v: &str) -> anyhow::Result<u64> {
    let lower = v.to_ascii_lowercase();
    let t = lower.trim_end_matches('b');
    let (num, unit) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'm')) => (&t[..i], 1 << 20),
        Some((i, 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|n| *n > 0)
        .with_context(|| {
            format!("invalid --log-opt max-size={v}: a size above 0, like 10m, 512k or 1g")
        })
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes() {
        assert_eq!(size("10m").unwrap(), 10 << 20);
        assert_eq!(size("512k").unwrap(), 512 << 10);
        assert_eq!(size("1GB").unwrap(), 1 << 30);
        assert_eq!(size("300").unwrap(), 300);
        for bad in ["0", "-1", "m", "ten", "99999999999999g"] {
            assert!(size(bad).is_err(), "{bad}");
        }
    }
}
