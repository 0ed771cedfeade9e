//! Names users give containers, volumes and networks: one rule for all
//! three (Docker's: a letter or digit, then letters, digits, `_`, `.` and
//! `-`), with one length limit. A name becomes a directory name in the
//! store and an /etc/hosts entry, so nothing else may pass.

use anyhow::bail;

/// The longest name den takes (a 64-hex-digit id fits, with room for a
/// compose project's `PROJECT-SERVICE-N`).
pub const MAX_LEN: usize = 128;

/// Whether `name` follows the rule.
pub fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_LEN
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// `Ok` for a valid name, else one line naming `kind` and the rule.
pub fn check(kind: &str, name: &str) -> anyhow::Result<()> {
    if !is_valid(name) {
        bail!(
            "invalid {kind} name `{name}`: use letters, digits, _ . - (first a letter or digit), at most {MAX_LEN} characters"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_rule_with_one_limit() {
        let longest = "a".repeat(MAX_LEN);
        for ok in ["a", "7", "web", "my-vol_1.x", "A.b-C_d", longest.as_str()] {
            assert!(is_valid(ok), "{ok}");
        }
        let too_long = "a".repeat(MAX_LEN + 1);
        for bad in [
            "",
            "-x",
            "_x",
            ".x",
            "a/b",
            "../x",
            "a b",
            "a:b",
            "é",
            "a\n",
            too_long.as_str(),
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_error_names_the_kind_and_the_rule() {
        assert!(check("volume", "data").is_ok());
        assert_eq!(
            check("network", "-n").unwrap_err().to_string(),
            "invalid network name `-n`: use letters, digits, _ . - (first a letter or digit), at most 128 characters"
        );
    }
}
