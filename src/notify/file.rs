//! The `file` notifier: one JSON object per line, appended; the simplest receiver, and the default in the shipped
//! config so earshot alerts with no server at all.

use std::io::Write;
use std::path::PathBuf;

use serde::Deserialize;

use super::Outcome;
use crate::config::KindCtx;
use crate::store::OutboxRow;

/// Appends alerts to a file.
#[derive(Debug, Clone)]
pub struct FileSink {
    path: PathBuf,
}

#[derive(Deserialize)]
struct Options {
    /// File to append to; relative to the config file.
    path: Option<String>,
}

impl FileSink {
    /// Validates the `file` keys.
    pub fn from_config(options: &toml::Table, ctx: &mut KindCtx<'_>) -> Option<FileSink> {
        let o: Options = ctx.read("file", options)?;
        let Some(path) = o.path.filter(|p| !p.trim().is_empty()) else {
            ctx.problem(
                "path",
                "missing `path` (the JSON-lines file to append alerts to)",
            );
            return None;
        };
        Some(FileSink {
            path: crate::config::values::resolve(ctx.base_dir, &path),
        })
    }

    /// The file.
    pub fn describe(&self) -> String {
        format!("append JSON lines to {}", self.path.display())
    }

    /// Appends the alert and syncs it to disk before reporting success.
    pub async fn deliver(&self, row: &OutboxRow) -> Outcome {
        let path = self.path.clone();
        let line = format!("{}\n", row.payload);
        let result = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            f.write_all(line.as_bytes())?;
            f.sync_data()
        })
        .await;
        match result {
            Ok(Ok(())) => Outcome::Delivered,
            Ok(Err(e)) => Outcome::Retry {
                reason: format!("cannot append to {}: {e}", self.path.display()),
                after: None,
            },
            Err(e) => Outcome::Retry {
                reason: format!("file write task failed: {e}"),
                after: None,
            },
        }
    }
}
