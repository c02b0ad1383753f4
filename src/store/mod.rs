//! The store: SQLite in WAL mode, the one place for everything that must survive a restart (the seen-set,
//! source cursors, mentions, cases and their tiers, the alert outbox).
//!
//! Writes that belong together share one transaction: a poll's items with its cursor; a tier firing with its
//! outbox rows; an acknowledgement with its `case.closed` rows. So a kill -9 at any point loses nothing and
//! repeats nothing. Other processes (`earshot ack`, `earshot cases`) use the same file concurrently.

mod cases;
mod ingest;
mod outbox;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, params};

pub use cases::{AckError, CaseRow, Closed, Closing, OpenThread};
pub use ingest::{Ingest, IngestReport, Item, Matched};
pub use outbox::OutboxRow;

use crate::http::Validators;
use crate::source::Cursor;

/// Schema version this build writes.
const SCHEMA_VERSION: i64 = 2;

/// A store error, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("store: {context}: {source}")]
    Sqlite {
        /// What was being done.
        context: &'static str,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The state directory could not be made.
    #[error("cannot create the state directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file was written by a newer earshot.
    #[error(
        "{path} has schema version {found}, newer than this earshot understands ({SCHEMA_VERSION}); upgrade earshot"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
}

trait Ctx<T> {
    fn ctx(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> Ctx<T> for Result<T, rusqlite::Error> {
    fn ctx(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite { context, source })
    }
}

/// A source's remembered state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceState {
    /// Where the last successful poll left off.
    pub cursor: Cursor,
    /// Consecutive failures.
    pub failures: u32,
    /// When the next poll is due (None: now).
    pub next_poll_at: Option<DateTime<Utc>>,
}

/// Handle to the store; clones share one connection.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    /// Random per database, part of every event id so ids never repeat across databases.
    instance: Arc<str>,
}

impl Store {
    /// Opens (creating if needed) `earshot.db` in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::Dir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join("earshot.db");
        let mut conn = Connection::open(&path).ctx("opening the database")?;
        conn.busy_timeout(Duration::from_secs(10))
            .ctx("setting busy timeout")?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .ctx("enabling WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .ctx("setting synchronous")?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .ctx("enabling foreign keys")?;
        migrate(&mut conn, &path)?;
        let instance: String = conn
            .query_row("SELECT value FROM meta WHERE key = 'instance'", [], |r| {
                r.get(0)
            })
            .ctx("reading instance id")?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            path,
            instance: instance.into(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back), so the poison is moot.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a store call off the async threads (SQLite may wait on another process's lock).
    pub async fn call<R: Send + 'static>(&self, f: impl FnOnce(&Store) -> R + Send + 'static) -> R {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .expect("store task panicked")
    }

    /// Checks the database answers (readiness, watchdog).
    pub fn ping(&self) -> Result<(), StoreError> {
        self.lock()
            .query_row("SELECT 1", [], |_| Ok(()))
            .ctx("ping")
    }

    /// A source's cursor, failure count and next poll time.
    pub fn source_state(&self, name: &str) -> Result<SourceState, StoreError> {
        let conn = self.lock();
        conn.query_row(
            "SELECT etag, last_modified, position, failures, next_poll_at FROM source_state WHERE name = ?1",
            [name],
            |r| {
                Ok(SourceState {
                    cursor: Cursor {
                        validators: Validators { etag: r.get(0)?, last_modified: r.get(1)? },
                        position: r.get(2)?,
                    },
                    failures: r.get(3)?,
                    next_poll_at: r.get::<_, Option<i64>>(4)?.map(from_ms),
                })
            },
        )
        .optional()
        .ctx("reading source state")
        .map(Option::unwrap_or_default)
    }

    /// Records a failed poll; returns the consecutive failure count. The cursor and seen-set stay untouched.
    pub fn record_failure(
        &self,
        name: &str,
        error: &str,
        next_poll_at: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let conn = self.lock();
        conn.query_row(
            "INSERT INTO source_state (name, failures, last_error, next_poll_at) VALUES (?1, 1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET failures = failures + 1, last_error = ?2, next_poll_at = ?3
             RETURNING failures",
            params![name, error, ms(next_poll_at)],
            |r| r.get(0),
        )
        .ctx("recording a failed poll")
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .ctx("reading schema version")?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
        });
    }
    if version == 0 {
        let tx = write_tx(conn)?;
        tx.execute_batch(include_str!("schema.sql"))
            .ctx("creating the schema")?;
        let instance: String = (0..8)
            .map(|_| fastrand::alphanumeric().to_ascii_lowercase())
            .collect();
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('instance', ?1)",
            [instance],
        )
        .ctx("writing instance id")?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .ctx("writing schema version")?;
        tx.commit().ctx("committing migration")?;
    } else if version == 1 {
        // Version 2 added reply detection: where to look for a reply, and who replied when.
        let tx = write_tx(conn)?;
        tx.execute_batch(
            "ALTER TABLE mentions ADD COLUMN thread TEXT;
             ALTER TABLE cases ADD COLUMN replied_by TEXT;
             ALTER TABLE cases ADD COLUMN replied_at INTEGER;",
        )
        .ctx("upgrading the schema to version 2")?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .ctx("writing schema version")?;
        tx.commit().ctx("committing migration")?;
    }
    Ok(())
}

/// Starts a write transaction that takes the write lock at once, so two processes never deadlock upgrading.
fn write_tx(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .ctx("starting a write transaction")
}

/// Unix milliseconds of a time.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The time of Unix milliseconds.
pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

#[cfg(test)]
mod tests;
