-- PostgreSQL twin of sqlite/0002_composes.sql. A compose's id is the id of its osbuild:<arch> job;
-- deleting the build job deletes the compose.
CREATE TABLE composes (
    id                text PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    depsolve_job      text,                      -- NULL for fake (?test=1|2) composes
    manifest_job      text,
    request           text NOT NULL,             -- JSON of the ComposeRequest (blueprint included)
    blueprint_name    text NOT NULL,
    blueprint_version text NOT NULL DEFAULT '',
    image_type        text NOT NULL,
    distro            text NOT NULL,
    arch              text NOT NULL,
    origin            text NOT NULL DEFAULT 'weldr',   -- which API asked: weldr | cloud | cli | ...
    channel           text NOT NULL DEFAULT '',
    created           double precision NOT NULL,
    size              bigint NOT NULL DEFAULT 0,       -- image size in bytes (0 = image type default)
    image_filename    text NOT NULL DEFAULT '',
    fake              integer NOT NULL DEFAULT 0,      -- 0/1 as in SQLite, not boolean
    build_pgid        bigint                           -- process group of the running build (recovery)
);
CREATE INDEX composes_channel ON composes(channel, created);
CREATE INDEX composes_blueprint ON composes(blueprint_name);
