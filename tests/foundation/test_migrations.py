"""The SQLite and PostgreSQL migrations describe one schema: same files, tables, columns, indexes
and triggers. The store SQL is written once for both, so a column added on one side only breaks
the other backend at run time; these checks catch it on the source instead.

The SQL is read crudely (regexes and a paren matcher), which is enough for the plain DDL the
migrations hold.
"""

from __future__ import annotations

import re

from osbuildd.queue.db import migrations

# Columns PostgreSQL has in addition: it has no implicit rowid, and the stores read `seq` there.
PG_ONLY_COLUMNS = {"seq"}
CONSTRAINT_WORDS = {"primary", "unique", "check", "foreign", "constraint", "exclude"}
CREATE_TABLE = re.compile(r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\(", re.I)
ADD_COLUMN = re.compile(r"\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(\w+)\s+ADD\s+(?:COLUMN\s+)?"
                        r"(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I)
CREATE_INDEX = re.compile(r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I)
CREATE_TRIGGER = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?TRIGGER\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I)


def _sql(backend: str) -> str:
    # comments dropped: they name columns and tables in prose
    return "\n".join(re.sub(r"--[^\n]*", "", sql) for _, _, sql in migrations(backend))


def _body(sql: str, start: int) -> str:
    """The text inside the parenthesis that opens just before ``start``."""
    depth = 1
    for i in range(start, len(sql)):
        depth += {"(": 1, ")": -1}.get(sql[i], 0)
        if depth == 0:
            return sql[start:i]
    raise AssertionError(f"unbalanced parenthesis after {sql[max(0, start - 40):start]!r}")


def _top_level_items(body: str) -> list[str]:
    items, depth, current = [], 0, []
    for ch in body:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def tables(backend: str) -> dict[str, list[str]]:
    """table -> its column names in order, from CREATE TABLE and ALTER TABLE ... ADD COLUMN."""
    sql = _sql(backend)
    found: dict[str, list[str]] = {}
    for m in CREATE_TABLE.finditer(sql):
        name = m.group(1).lower()
        assert name not in found, f"{backend}: table {name} created twice"
        found[name] = [item.split()[0].strip('"').lower() for item in _top_level_items(_body(sql, m.end()))
                       if item.split()[0].lower() not in CONSTRAINT_WORDS]
    for m in ADD_COLUMN.finditer(sql):
        found.setdefault(m.group(1).lower(), []).append(m.group(2).lower())
    return found


def test_both_backends_have_the_same_migrations() -> None:
    sqlite = [(number, name) for number, name, _ in migrations("sqlite")]
    postgresql = [(number, name) for number, name, _ in migrations("postgresql")]
    assert sqlite, "no SQLite migrations found"
    assert sqlite == postgresql


def test_the_parser_sees_the_known_tables() -> None:
    # guards the regexes themselves: a parser that finds nothing would make the next test vacuous
    found = tables("sqlite")
    assert found["jobs"][:3] == ["seq", "id", "type"]
    assert "ib_composes" in found and "deleted" in found["ib_composes"]
    assert "unique" not in found["blueprint_changes"]


def test_every_table_and_column_exists_in_both() -> None:
    sqlite, postgresql = tables("sqlite"), tables("postgresql")
    assert sorted(sqlite) == sorted(postgresql)
    for table, columns in sqlite.items():
        pg_columns = postgresql[table]
        assert set(columns) <= set(pg_columns), f"{table}: missing in PostgreSQL"
        assert set(pg_columns) - set(columns) <= PG_ONLY_COLUMNS, f"{table}: missing in SQLite"
        # the shared columns come in the same order, so SELECT * and INSERT without a column list agree
        assert [c for c in pg_columns if c in columns] == columns, table


def test_indexes_and_triggers_have_the_same_names() -> None:
    for pattern in (CREATE_INDEX, CREATE_TRIGGER):
        names = {backend: sorted(m.group(1).lower() for m in pattern.finditer(_sql(backend)))
                 for backend in ("sqlite", "postgresql")}
        assert names["sqlite"], pattern.pattern
        assert names["sqlite"] == names["postgresql"]
