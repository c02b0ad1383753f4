-- earshot store, schema version 2 (version 1 lacked mentions.thread and cases.replied_*; see migrate()). Times are Unix milliseconds (UTC).

-- Each source's cursor and health, so a restart neither re-reads, skips nor stampedes.
CREATE TABLE source_state (
    name          TEXT PRIMARY KEY,
    etag          TEXT,
    last_modified TEXT,
    position      TEXT,
    failures      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    last_ok_at    INTEGER,
    next_poll_at  INTEGER
);

-- Every item ever offered by a source: the dedup set. Pruned only after a successful fetch.
CREATE TABLE seen (
    source     TEXT NOT NULL,
    item_key   TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (source, item_key)
) WITHOUT ROWID;

-- Mentions that matched a brand, with their verdict (JSON).
CREATE TABLE mentions (
    id           INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,
    item_key     TEXT NOT NULL,
    url          TEXT,
    author       TEXT,
    text         TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    fetched_at   INTEGER NOT NULL,
    lang         TEXT,
    brand        TEXT NOT NULL,
    verdict      TEXT NOT NULL,
    thread       TEXT,            -- the source's reference for finding replies (opaque to the store)
    UNIQUE (source, item_key, brand)
);

CREATE TABLE cases (
    id           INTEGER PRIMARY KEY,
    mention_id   INTEGER NOT NULL UNIQUE REFERENCES mentions(id),
    brand        TEXT NOT NULL,
    opened_at    INTEGER NOT NULL,
    posted_at    INTEGER NOT NULL,
    deadline     INTEGER NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    closed_at    INTEGER,
    close_reason TEXT,
    close_note   TEXT,
    replied_by   TEXT,            -- the brand account whose reply closed it
    replied_at   INTEGER          -- that reply's own time
);
CREATE INDEX cases_state ON cases(state);

-- The escalation plan of each case, fixed when the case opens (a config change never rewrites an open case).
CREATE TABLE case_tiers (
    case_id  INTEGER NOT NULL REFERENCES cases(id),
    tier     INTEGER NOT NULL,
    event    TEXT NOT NULL,
    due_at   INTEGER NOT NULL,
    notify   TEXT NOT NULL,          -- JSON array of notifier names
    state    TEXT NOT NULL CHECK (state IN ('pending', 'fired', 'cancelled')),
    fired_at INTEGER,
    PRIMARY KEY (case_id, tier)
);
CREATE INDEX case_tiers_due ON case_tiers(state, due_at);

-- Every alert, written in the same transaction as the change that caused it, kept until delivered.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    event_id        TEXT NOT NULL,
    notifier        TEXT NOT NULL,
    case_id         INTEGER NOT NULL,
    event           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    UNIQUE (event_id, notifier)
);
CREATE INDEX outbox_due ON outbox(state, notifier, next_attempt_at);

CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
