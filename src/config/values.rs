//! Parsing of the config's human-friendly values: durations, sizes, secrets and paths.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Parses a humantime duration such as `30s`, `45m`, `1h 30m`.
pub fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("invalid duration {text:?}: {e} (write it like \"30s\", \"45m\" or \"1h 30m\")")
    })
}

/// Parses a size such as `10 MiB`, `512KiB`, `2MB` or a bare number of bytes.
pub fn size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size {text:?}: write it like \"10 MiB\""))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" | "k" => 1 << 10,
        "mb" => 1_000_000,
        "mib" | "m" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" | "g" => 1 << 30,
        other => {
            return Err(format!(
                "invalid size {text:?}: unknown unit {other:?} (use KiB, MiB or GiB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("invalid size {text:?}: too large"))
}

/// A secret (password, token, signing key): its value never appears in logs, errors or the API.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Reads a secret named by `{key}_env` or `{key}_file`; `None` when neither is given.
///
/// Secrets are never written inline in the config, so a leaked config file leaks no credential.
pub fn secret(
    env_name: Option<&str>,
    file: Option<&Path>,
    key: &str,
    path: &str,
) -> Result<Option<Secret>, (String, String)> {
    match (env_name, file) {
        (Some(_), Some(_)) => Err((
            path.to_string(),
            format!("give either `{key}_env` or `{key}_file`, not both"),
        )),
        (Some(name), None) => match std::env::var(name) {
            Ok(v) if !v.is_empty() => Ok(Some(Secret(v))),
            Ok(_) => Err((
                format!("{path}.{key}_env"),
                format!("environment variable {name} is empty"),
            )),
            Err(_) => Err((
                format!("{path}.{key}_env"),
                format!("environment variable {name} is not set"),
            )),
        },
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(v) if !v.trim().is_empty() => {
                Ok(Some(Secret(v.trim_end_matches(['\n', '\r']).to_string())))
            }
            Ok(_) => Err((
                format!("{path}.{key}_file"),
                format!("{} is empty", f.display()),
            )),
            Err(e) => Err((
                format!("{path}.{key}_file"),
                format!("cannot read {}: {e}", f.display()),
            )),
        },
        (None, None) => Ok(None),
    }
}

/// Resolves a path from the config against the config file's directory, so a config works from any working
/// directory.
pub fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_their_errors() {
        assert_eq!(duration("45m"), Ok(Duration::from_secs(45 * 60)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(90 * 60)));
        assert!(duration("30 sec").is_ok());
        let err = duration("thirty").unwrap_err();
        assert!(err.contains("\"thirty\""), "{err}");
    }

    #[test]
    fn sizes() {
        assert_eq!(size("10 MiB"), Ok(10 << 20));
        assert_eq!(size("512KiB"), Ok(512 << 10));
        assert_eq!(size("2000"), Ok(2000));
        assert!(size("ten").is_err());
        assert!(size("3 parsecs").unwrap_err().contains("parsecs"));
    }

    #[test]
    fn secrets_come_from_env_or_file_and_never_print() {
        // SAFETY: unit tests in this module are the only users of this variable name.
        unsafe { std::env::set_var("EARSHOT_TEST_SECRET_A", "hunter2") };
        let s = secret(Some("EARSHOT_TEST_SECRET_A"), None, "password", "notify[0]")
            .unwrap()
            .unwrap();
        assert_eq!(s.expose(), "hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        let (path, msg) = secret(
            Some("EARSHOT_TEST_SECRET_MISSING"),
            None,
            "password",
            "notify[0]",
        )
        .unwrap_err();
        assert_eq!(path, "notify[0].password_env");
        assert!(msg.contains("EARSHOT_TEST_SECRET_MISSING is not set"));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        assert_eq!(
            secret(None, Some(&f), "password", "n")
                .unwrap()
                .unwrap()
                .expose(),
            "s3cret"
        );
        assert!(secret(None, None, "password", "n").unwrap().is_none());
    }
}
