-- User package sources of the Weldr API (projects/source/*). System repositories come from the
-- distro definitions and are never stored here. `config` is the upstream store SourceConfig as JSON.
CREATE TABLE weldr_sources (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    config  TEXT NOT NULL
);
CREATE INDEX weldr_sources_name ON weldr_sources(name);
