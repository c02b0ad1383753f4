//! The shipped unit passes systemd's own static checks, and its exposure score stays at 2.0 or lower.

use std::process::Command;

fn unit_with_binary(dir: &std::path::Path) -> std::path::PathBuf {
    // verify insists that ExecStart's binary exists: point it at the one cargo built.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/earshot.service"
    ))
    .unwrap();
    let path = dir.join("earshot.service");
    std::fs::write(
        &path,
        text.replace("/usr/local/bin/earshot", env!("CARGO_BIN_EXE_earshot")),
    )
    .unwrap();
    path
}

fn analyze(args: &[&str]) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .output()
        .expect("systemd-analyze is needed for this test (Debian package `systemd`)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn unit_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_with_binary(dir.path());
    let (ok, out) = analyze(&["verify", "--man=no", unit.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(
        !out.contains("Unknown key") && !out.contains("ignoring"),
        "{out}"
    );
}

#[test]
fn unit_exposure_is_at_most_2_0() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_with_binary(dir.path());
    let (ok, out) = analyze(&[
        "security",
        "--offline=true",
        "--threshold=20",
        unit.to_str().unwrap(),
    ]);
    assert!(ok, "exposure above 2.0:\n{out}");
    let score: f64 = out
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("score line");
    assert!(score <= 2.0, "{score}");
}

#[test]
fn unit_has_the_promised_settings() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/earshot.service"
    ))
    .unwrap();
    for line in [
        "Type=notify",
        "StateDirectory=earshot",
        "RestartPreventExitStatus=78",
        "WatchdogSec=",
        "ExecReload=",
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "missing {line}");
    }
}
