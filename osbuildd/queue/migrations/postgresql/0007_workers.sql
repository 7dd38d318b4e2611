-- PostgreSQL twin of sqlite/0007_workers.sql: remote workers registered through the worker API.
CREATE TABLE workers (
    id             text PRIMARY KEY,                  -- uuid
    channel        text NOT NULL DEFAULT '',          -- "org-<tenant>" with JWT
    arch           text NOT NULL,
    registered_at  double precision NOT NULL,
    heartbeat      double precision NOT NULL
);
CREATE INDEX workers_heartbeat ON workers(heartbeat);
