-- Vigie registry schema, version 1. Applied in one transaction on first open.
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS experiments (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id            TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    parent_id     TEXT REFERENCES runs(id),
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,
    user_name     TEXT NOT NULL,
    git_commit    TEXT,
    started_at    TEXT NOT NULL,
    ended_at      TEXT,
    data_sha256   TEXT,
    data_source   TEXT,
    data_rows     INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs(experiment_id, started_at);
CREATE TABLE IF NOT EXISTS params (
    run_id TEXT NOT NULL REFERENCES runs(id),
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS tags (
    run_id TEXT NOT NULL REFERENCES runs(id),
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(id),
    key    TEXT NOT NULL,
    step   INTEGER NOT NULL,
    value  REAL,
    PRIMARY KEY (run_id, key, step)
);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL REFERENCES runs(id),
    path   TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size   INTEGER NOT NULL,
    PRIMARY KEY (run_id, path)
);
CREATE TABLE IF NOT EXISTS models (
    name       TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    model      TEXT NOT NULL REFERENCES models(name),
    version    INTEGER NOT NULL,
    run_id     TEXT NOT NULL REFERENCES runs(id),
    artifact   TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    algorithm  TEXT NOT NULL,
    task       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (model, version)
);
CREATE TABLE IF NOT EXISTS aliases (
    model   TEXT NOT NULL REFERENCES models(name),
    alias   TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES versions(model, version)
);
CREATE TABLE IF NOT EXISTS alias_history (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    model        TEXT NOT NULL,
    alias        TEXT NOT NULL,
    from_version INTEGER,
    to_version   INTEGER,
    kind         TEXT NOT NULL,   -- 'move', 'rollback' or 'delete'
    user_name    TEXT NOT NULL,
    at           TEXT NOT NULL,
    reason       TEXT NOT NULL
);
