-- Versioned blueprint store of the Weldr API (upstream internal/store: blueprints, workspace,
-- blueprintsChanges, blueprintsCommits). Blueprints are stored as upstream's JSON.
CREATE TABLE blueprints (
    name       TEXT PRIMARY KEY,
    blueprint  TEXT NOT NULL,              -- committed blueprint (after the version bump)
    updated    REAL NOT NULL
);
-- The workspace copy is separate from commits; a name may have one without a committed blueprint.
CREATE TABLE blueprint_workspace (
    name       TEXT PRIMARY KEY,
    blueprint  TEXT NOT NULL,
    updated    REAL NOT NULL
);
-- Change history; it survives blueprint deletion. `seq` is the commit order (oldest first).
CREATE TABLE blueprint_changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    commit_id  TEXT NOT NULL,              -- random 40-hex, as upstream
    message    TEXT NOT NULL,
    revision   INTEGER,                    -- set by tag
    timestamp  TEXT NOT NULL,              -- YYYY-MM-DDTHH:MM:SSZ
    blueprint  TEXT,                       -- the pushed blueprint (before the bump); NULL = "old change"
    UNIQUE (name, commit_id)
);
CREATE INDEX blueprint_changes_name ON blueprint_changes(name, seq);
