-- PostgreSQL twin of sqlite/0004_sources.sql: user package sources of the Weldr API.
CREATE TABLE weldr_sources (
    id      text PRIMARY KEY,
    name    text NOT NULL,
    config  text NOT NULL
);
CREATE INDEX weldr_sources_name ON weldr_sources(name);
