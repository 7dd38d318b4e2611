-- Composes (compose service). A compose is a request plus its job graph; its id is the id of its
-- osbuild:<arch> job (as upstream). Deleting the build job deletes the compose.
CREATE TABLE composes (
    id                TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    depsolve_job      TEXT,                      -- NULL for fake (?test=1|2) composes
    manifest_job      TEXT,
    request           TEXT NOT NULL,             -- JSON of the ComposeRequest (blueprint included)
    blueprint_name    TEXT NOT NULL,
    blueprint_version TEXT NOT NULL DEFAULT '',
    image_type        TEXT NOT NULL,
    distro            TEXT NOT NULL,
    arch              TEXT NOT NULL,
    origin            TEXT NOT NULL DEFAULT 'weldr',   -- which API asked: weldr | cloud | cli | ...
    channel           TEXT NOT NULL DEFAULT '',
    created           REAL NOT NULL,
    size              INTEGER NOT NULL DEFAULT 0,      -- image size in bytes (0 = image type default)
    image_filename    TEXT NOT NULL DEFAULT '',
    fake              INTEGER NOT NULL DEFAULT 0,
    build_pgid        INTEGER                          -- process group of the running build (recovery)
);
CREATE INDEX composes_channel ON composes(channel, created);
CREATE INDEX composes_blueprint ON composes(blueprint_name);
