-- Remote workers registered through the worker API (POST /workers), owned by osbuildd/queue/workers.py.
-- A worker's heartbeat is refreshed by POST /workers/{id}/status; workers silent for the configured
-- worker_heartbeat_timeout are deleted. Jobs do not reference this table: a job's owner is the worker
-- id as text, and the job store's heartbeat watcher requeues jobs whose token went silent.
CREATE TABLE workers (
    id             TEXT PRIMARY KEY,                  -- uuid
    channel        TEXT NOT NULL DEFAULT '',          -- "org-<tenant>" with JWT
    arch           TEXT NOT NULL,
    registered_at  REAL NOT NULL,
    heartbeat      REAL NOT NULL
);
CREATE INDEX workers_heartbeat ON workers(heartbeat);
