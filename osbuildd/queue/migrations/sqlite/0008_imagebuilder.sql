-- The image-builder service's own tables (upstream image-builder-crc internal/db/migrations-tern:
-- composes, blueprints, blueprint_versions), prefixed ib_ because the Weldr blueprint store and the
-- compose store already own "blueprints" and "composes". Owned by osbuildd/imagebuilder/store.py.
-- Every row belongs to one organisation (org_id) and every query is scoped by it. Times are Unix
-- seconds (REAL); JSON documents (request, body, metadata) are stored as text.
CREATE TABLE ib_blueprints (
    id              TEXT PRIMARY KEY,                                  -- uuid
    org_id          TEXT NOT NULL CHECK (trim(org_id) <> ''),
    account_number  TEXT,
    name            TEXT NOT NULL CHECK (length(name) <= 200),
    description     TEXT NOT NULL DEFAULT '' CHECK (length(description) <= 250),
    metadata        TEXT,                                              -- JSON or NULL
    created_at      REAL NOT NULL,
    deleted         INTEGER NOT NULL DEFAULT 0,                        -- soft delete (name := id)
    UNIQUE (org_id, name)
);
CREATE INDEX ib_blueprints_org ON ib_blueprints(org_id, deleted);

-- Every update of a blueprint is a new version (1, 2, ...); versions go with their blueprint.
CREATE TABLE ib_blueprint_versions (
    id                 TEXT PRIMARY KEY,                               -- uuid
    blueprint_id       TEXT NOT NULL REFERENCES ib_blueprints(id) ON DELETE CASCADE,
    version            INTEGER NOT NULL,
    body               TEXT NOT NULL,                                  -- JSON
    created_at         REAL NOT NULL,
    service_snapshots  TEXT,                                           -- JSON or NULL
    UNIQUE (blueprint_id, version)
);

-- job_id is the composer's compose id; request is the image-builder request (JSON).
CREATE TABLE ib_composes (
    job_id                TEXT PRIMARY KEY,                            -- uuid
    request               TEXT NOT NULL,
    created_at            REAL NOT NULL,
    account_number        TEXT,
    org_id                TEXT NOT NULL CHECK (trim(org_id) <> ''),
    email                 TEXT,
    image_name            TEXT CHECK (image_name IS NULL OR length(image_name) <= 100),
    client_id             TEXT,
    blueprint_version_id  TEXT REFERENCES ib_blueprint_versions(id) ON DELETE SET NULL,
    deleted               INTEGER NOT NULL DEFAULT 0                   -- soft delete
);
-- An organisation's composes, newest first, without reading any other organisation's rows.
CREATE INDEX ib_composes_org_created ON ib_composes(org_id, created_at);
CREATE INDEX ib_composes_blueprint_version ON ib_composes(blueprint_version_id);
