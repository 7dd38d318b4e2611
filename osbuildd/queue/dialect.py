"""The few SQL fragments that differ between SQLite and PostgreSQL; everything else in the stores is
written once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    name: str
    # the implicit row number (SQLite) or the identity column standing in for it (PostgreSQL)
    rowid: str
    # ILIKE on PostgreSQL: SQLite's LIKE is already case-insensitive for ASCII
    like: str
    # appended to a subquery that picks one row to update: other takers skip the locked row
    # instead of queueing behind it (SQLite's writer lock already serialises them)
    skip_locked: str
    # appended to a read whose rows must not change until this transaction commits
    for_share: str
    for_update: str
    # one statement, parameter = a key (text): a lock held until the transaction ends, so that
    # check-then-insert steps of several daemons take turns ("" on SQLite: BEGIN IMMEDIATE already
    # serialises every writer of the one file)
    xact_lock: str = ""

    def indexed_by(self, index: str) -> str:
        """SQLite's planner hint; PostgreSQL plans on its own."""
        return f"INDEXED BY {index}" if self.name == "sqlite" else ""

    def json_array_agg(self, expr: str, order: str) -> str:
        """A JSON array (text) of ``expr`` over the rows of the surrounding query, in ``order``,
        "[]" when there are none."""
        if self.name == "sqlite":
            raise NotImplementedError("SQLite aggregates over an ordered subquery")
        return f"coalesce(json_agg({expr} ORDER BY {order}), '[]')::text"

    def json_field(self, column: str, path: str) -> str:
        """The text at ``path`` (``$.a[0].b``) of the JSON text in ``column``."""
        if self.name == "sqlite":
            return f"json_extract({column}, '{path}')"
        steps = []
        for part in path.removeprefix("$").replace("[", ".[").split("."):
            if not part:
                continue
            steps.append(part[1:-1] if part.startswith("[") else f"'{part}'")
        inner = "".join(f" -> {s}" for s in steps[:-1])
        return f"(({column})::json{inner} ->> {steps[-1]})"


SQLITE = Dialect(name="sqlite", rowid="rowid", like="LIKE", skip_locked="", for_share="", for_update="")
POSTGRESQL = Dialect(name="postgresql", rowid="seq", like="ILIKE", skip_locked=" FOR UPDATE SKIP LOCKED",
                     for_share=" FOR SHARE", for_update=" FOR UPDATE",
                     xact_lock="SELECT pg_advisory_xact_lock(hashtext(?))")
