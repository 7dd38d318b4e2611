-- The job queue (foundation). A job is one unit of work handed to exactly one taker.
CREATE TABLE jobs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,  -- FIFO order
    id           TEXT NOT NULL UNIQUE,              -- uuid
    type         TEXT NOT NULL,
    args         TEXT NOT NULL,                     -- JSON
    channel      TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL CHECK (status IN ('pending', 'running', 'finished', 'canceled')),
    waiting_for  INTEGER NOT NULL DEFAULT 0,        -- dependencies not finished yet
    result       TEXT,                              -- JSON
    error        TEXT,                              -- JSON {id, reason, details}
    queued_at    REAL NOT NULL,
    started_at   REAL,
    finished_at  REAL,
    token        TEXT UNIQUE,
    owner        TEXT,                              -- "local" (in-process executor) or a worker
    heartbeat    REAL,
    retries      INTEGER NOT NULL DEFAULT 0,
    progress     TEXT                               -- JSON
);

CREATE TABLE job_dependencies (
    job_id        TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    dependency_id TEXT NOT NULL REFERENCES jobs(id),
    PRIMARY KEY (job_id, position)
);

-- dequeue only ever looks at ready pending jobs: this index stays small however many jobs finished.
CREATE INDEX jobs_ready ON jobs(type, channel, seq) WHERE status = 'pending' AND waiting_for = 0;
-- the heartbeat watcher and crash recovery look at running jobs only.
CREATE INDEX jobs_running ON jobs(heartbeat) WHERE status = 'running';
CREATE INDEX jobs_status_channel ON jobs(status, channel);
CREATE INDEX job_dependencies_dependency ON job_dependencies(dependency_id);
