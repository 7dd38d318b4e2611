"""The image-builder service's storage: composes, blueprints and blueprint versions of every
organisation, the one owner of the ``ib_*`` tables (migration 0008).

It keeps what upstream image-builder-crc keeps in PostgreSQL (``internal/db``), with the same rules:

- every method takes the caller's ``org_id`` and sees only that organisation's rows: another
  organisation's compose or blueprint is "not found", never listed nor counted;
- compose lists cover a window (``COMPOSE_LIST_WINDOW``, 14 days upstream), newest first, without
  deleted composes, optionally without those whose first image request has one of ``ignore_image_types``;
  their count (``meta.count``) applies the same filters;
- deleting a compose or a blueprint is a soft delete; a deleted blueprint frees its name (its name
  becomes its id) and marks its composes deleted;
- blueprint names are unique per organisation (:class:`BlueprintNameTaken`);
- an update of a blueprint adds a version (1, 2, ...); a compose may point at the version it was built from;
- the quota count (:meth:`count_composes_since`) counts deleted composes too.

:class:`ImageBuilderStore` is the interface the HTTP layer uses; :class:`DatabaseImageBuilderStore`
implements it on the daemon's database, SQLite or PostgreSQL (the same SQL, ``db.dialect`` for the
few fragments that differ). With PostgreSQL several daemons share the tables: what must hold across
them (the quota, consecutive blueprint versions) is decided inside one transaction, under a lock.
Documents (requests, bodies, metadata) go in and come out as JSON values (``dict``); what the
HTTP layer redacts (passwords, ...) it redacts itself.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from osbuildd.errors import ErrorKind, ServiceError
from osbuildd.queue.db import Database, is_unique_violation, unique_violation_types

COMPOSE_LIST_WINDOW = 14 * 24 * 3600.0   # upstream lists the composes of the last two weeks
QUOTA_LOCK = "osbuildd:ib-quota:"        # + org id: the key of the quota's lock (PostgreSQL)
T = TypeVar("T")
# (window seconds, check): the check gets the organisation's compose count in the window and raises
# to refuse the compose (quotas.Quotas.enforce)
QuotaGate = tuple[float, Callable[[int], object]]


class ComposeNotFound(ServiceError):
    kind = ErrorKind.NOT_FOUND
    error_id = "ComposeNotFound"

    def __init__(self) -> None:
        super().__init__("compose entry not found")   # upstream's ErrComposeEntryNotFound


class BlueprintNotFound(ServiceError):
    kind = ErrorKind.NOT_FOUND
    error_id = "BlueprintNotFound"

    def __init__(self) -> None:
        super().__init__("blueprint not found")   # upstream's ErrBlueprintNotFound


class BlueprintNameTaken(ServiceError):
    """Another live blueprint of the organisation has this name (upstream: 422 "Name not unique")."""

    kind = ErrorKind.CONFLICT
    error_id = "BlueprintNameTaken"

    def __init__(self) -> None:
        super().__init__("A blueprint with the same name already exists.", field="name")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the number of matching rows over all pages (``meta.count``)."""

    items: list[T]
    count: int


@dataclass(frozen=True)
class ComposeEntry:
    id: str
    org_id: str
    request: Any                     # the image-builder compose request, as stored
    created_at: float                # Unix seconds
    image_name: str | None
    client_id: str | None
    account_number: str | None
    email: str | None
    blueprint_id: str | None         # set when built from a blueprint version (that still exists)
    blueprint_version: int | None
    blueprint_version_id: str | None

    @property
    def image_type(self) -> str | None:
        """The first image request's image type (what ``ignore_image_types`` filters on)."""
        try:
            value = self.request["image_requests"][0]["image_type"]
        except (KeyError, IndexError, TypeError):
            return None
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Blueprint:
    id: str
    version_id: str
    version: int
    name: str
    description: str
    body: Any
    metadata: Any | None
    service_snapshots: Any | None
    account_number: str | None


@dataclass(frozen=True)
class BlueprintSummary:
    """A list entry: the latest version number and when the blueprint last changed."""

    id: str
    name: str
    description: str
    version: int
    last_modified_at: float


@dataclass(frozen=True)
class BlueprintVersion:
    id: str
    version: int
    created_at: float


class ImageBuilderStore(Protocol):
    """Everything the image-builder API stores, scoped by organisation."""

    async def insert_compose(self, org_id: str, job_id: str, request: Any, *,
                             account_number: str | None = None, email: str | None = None,
                             image_name: str | None = None, client_id: str | None = None,
                             blueprint_version_id: str | None = None,
                             created_at: float | None = None,
                             quota: QuotaGate | None = None) -> ComposeEntry: ...

    async def get_compose(self, org_id: str, job_id: str) -> ComposeEntry: ...

    async def list_composes(self, org_id: str, *, limit: int = 100, offset: int = 0,
                            ignore_image_types: Sequence[str] | None = None,
                            window: float = COMPOSE_LIST_WINDOW,
                            now: float | None = None) -> Page[ComposeEntry]: ...

    async def delete_compose(self, org_id: str, job_id: str) -> None: ...

    async def count_composes_since(self, org_id: str, window: float,
                                   now: float | None = None) -> int: ...

    async def create_blueprint(self, org_id: str, name: str, body: Any, *, description: str = "",
                               account_number: str | None = None, metadata: Any | None = None,
                               service_snapshots: Any | None = None) -> Blueprint: ...

    async def get_blueprint(self, org_id: str, blueprint_id: str,
                            version: int | None = None) -> Blueprint: ...

    async def find_blueprint_by_name(self, org_id: str, name: str) -> BlueprintSummary | None: ...

    async def list_blueprints(self, org_id: str, *, search: str | None = None, limit: int = 100,
                              offset: int = 0) -> Page[BlueprintSummary]: ...

    async def update_blueprint(self, org_id: str, blueprint_id: str, name: str, body: Any, *,
                               description: str = "",
                               service_snapshots: Any | None = None) -> Blueprint: ...

    async def delete_blueprint(self, org_id: str, blueprint_id: str) -> None: ...

    async def blueprint_versions(self, org_id: str, blueprint_id: str) -> list[BlueprintVersion]: ...

    async def latest_blueprint_version(self, org_id: str, blueprint_id: str) -> int: ...

    async def blueprint_composes(self, org_id: str, blueprint_id: str, *, version: int | None = None,
                                 limit: int = 100, offset: int = 0,
                                 ignore_image_types: Sequence[str] | None = None,
                                 window: float = COMPOSE_LIST_WINDOW,
                                 now: float | None = None) -> Page[ComposeEntry]: ...


def _uuid(value: str) -> str | None:
    """The canonical form of a uuid, or None if ``value`` is none (no row can have that id)."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _ignore_clause(db: Database, ignore: Sequence[str] | None, column: str) -> tuple[str, list[str]]:
    """Upstream's ``image_requests[0].image_type <> ALL(ignore)``: no filter for no list; with a
    non-empty list, a compose without an image type is left out too (NULL <> ALL(...) is not true)."""
    if not ignore:
        return "", []
    marks = ", ".join("?" for _ in ignore)
    field = db.dialect.json_field(column, "$.image_requests[0].image_type")
    return f" AND {field} NOT IN ({marks})", [str(t) for t in ignore]


_COMPOSE_COLUMNS = (
    "c.job_id, c.org_id, c.request, c.created_at, c.image_name, c.client_id, c.account_number,"
    " c.email, c.blueprint_version_id, v.blueprint_id, v.version")
# per-blueprint subqueries rather than a GROUP BY over a join, which SQLite answers by scanning
# every organisation's blueprints in id order
_SUMMARY = (
    "SELECT b.id, b.name, b.description,"
    " (SELECT MAX(v.version) FROM ib_blueprint_versions v WHERE v.blueprint_id = b.id) AS version,"
    " (SELECT MAX(v.created_at) FROM ib_blueprint_versions v WHERE v.blueprint_id = b.id)"
    " AS last_modified_at FROM ib_blueprints b {index} WHERE b.org_id = ? AND b.deleted = 0")
# The organisation's index, named (SQLite only): with statistics (ANALYZE) of one huge organisation
# and a few small ones, SQLite's average rows-per-org_id would have it scan every organisation's rows.
_BY_ORG = "ib_blueprints_org"
_COMPOSES_BY_ORG = "ib_composes_org_created"
# the quota's count: deleted composes too
_COUNT_SINCE = "SELECT COUNT(*) FROM ib_composes c {index} WHERE c.org_id = ? AND c.created_at >= ?"


def _compose(row: Any) -> ComposeEntry:
    return ComposeEntry(
        id=row["job_id"], org_id=row["org_id"], request=_load(row["request"]),
        created_at=row["created_at"], image_name=row["image_name"], client_id=row["client_id"],
        account_number=row["account_number"], email=row["email"],
        blueprint_id=row["blueprint_id"], blueprint_version=row["version"],
        blueprint_version_id=row["blueprint_version_id"] if row["blueprint_id"] is not None else None)


def _summary(row: Any) -> BlueprintSummary:
    return BlueprintSummary(row["id"], row["name"], row["description"], row["version"],
                            row["last_modified_at"])


def _is_name_clash(exc: BaseException) -> bool:
    # SQLite names the columns of UNIQUE (org_id, name), PostgreSQL the constraint
    return is_unique_violation(exc, "ib_blueprints.name") or is_unique_violation(exc, "ib_blueprints_org_name")


class DatabaseImageBuilderStore:
    """:class:`ImageBuilderStore` on the daemon's database (``osbuildd.queue.db``, either backend)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _composes_by_org(self) -> str:
        return f"ib_composes c {self.db.dialect.indexed_by(_COMPOSES_BY_ORG)}"

    # -- composes ---------------------------------------------------------------------------------

    async def insert_compose(self, org_id: str, job_id: str, request: Any, *,
                             account_number: str | None = None, email: str | None = None,
                             image_name: str | None = None, client_id: str | None = None,
                             blueprint_version_id: str | None = None,
                             created_at: float | None = None,
                             quota: QuotaGate | None = None) -> ComposeEntry:
        """Record a compose the composer accepted (``job_id`` = its compose id). A
        ``blueprint_version_id`` must be a version of one of the organisation's live blueprints.

        With ``quota`` = (window, check), ``check`` gets the organisation's count of composes in the
        ``window`` before ``created_at``, in the inserting transaction, and may raise to refuse: on
        PostgreSQL under a transaction-scoped advisory lock per organisation, so daemons sharing the
        database take turns and their composes never add up past the quota (on SQLite the one
        writer's BEGIN IMMEDIATE does the same)."""
        job = _uuid(job_id)
        if job is None:
            raise ValueError(f"compose id {job_id!r} is not a uuid")
        when = time.time() if created_at is None else created_at
        async with self.db.transaction() as conn:
            if quota is not None:
                window, check = quota
                if self.db.dialect.xact_lock:
                    await conn.execute(self.db.dialect.xact_lock, (QUOTA_LOCK + org_id,))
                counted = await conn.execute_fetchall(
                    _COUNT_SINCE.format(index=self.db.dialect.indexed_by(_COMPOSES_BY_ORG)),
                    (org_id, when - window))
                check(int(counted[0][0]))
            if blueprint_version_id is not None:
                version_id = _uuid(blueprint_version_id)
                rows = await conn.execute_fetchall(
                    "SELECT v.id FROM ib_blueprint_versions v JOIN ib_blueprints b ON b.id = v.blueprint_id"
                    " WHERE v.id = ? AND b.org_id = ? AND b.deleted = 0", (version_id, org_id))
                if not rows:
                    raise BlueprintNotFound()
                blueprint_version_id = version_id
            await conn.execute(
                "INSERT INTO ib_composes (job_id, request, created_at, account_number, org_id, email,"
                " image_name, client_id, blueprint_version_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job, _dump(request), when, account_number, org_id, email, image_name, client_id,
                 blueprint_version_id))
        return await self._compose(org_id, job, include_deleted=True)

    async def _compose(self, org_id: str, job_id: str, *, include_deleted: bool) -> ComposeEntry:
        job = _uuid(job_id)
        deleted = "" if include_deleted else " AND c.deleted = 0"
        async with self.db.conn.execute(
                f"SELECT {_COMPOSE_COLUMNS} FROM ib_composes c"
                " LEFT JOIN ib_blueprint_versions v ON v.id = c.blueprint_version_id"
                f" WHERE c.org_id = ? AND c.job_id = ?{deleted}", (org_id, job)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise ComposeNotFound()
        return _compose(row)

    async def get_compose(self, org_id: str, job_id: str) -> ComposeEntry:
        """The organisation's compose (not a deleted one); ComposeNotFound otherwise."""
        return await self._compose(org_id, job_id, include_deleted=False)

    async def list_composes(self, org_id: str, *, limit: int = 100, offset: int = 0,
                            ignore_image_types: Sequence[str] | None = None,
                            window: float = COMPOSE_LIST_WINDOW,
                            now: float | None = None) -> Page[ComposeEntry]:
        """The organisation's live composes of the last ``window`` seconds, newest first."""
        since = (time.time() if now is None else now) - window
        ignore, params = _ignore_clause(self.db, ignore_image_types, "c.request")
        where = f"c.org_id = ? AND c.created_at >= ? AND c.deleted = 0{ignore}"
        rows = await self.db.conn.execute_fetchall(
            f"SELECT {_COMPOSE_COLUMNS} FROM {self._composes_by_org()}"
            " LEFT JOIN ib_blueprint_versions v ON v.id = c.blueprint_version_id"
            f" WHERE {where} ORDER BY c.created_at DESC, c.{self.db.dialect.rowid} DESC LIMIT ? OFFSET ?",
            (org_id, since, *params, max(limit, 0), max(offset, 0)))
        counted = await self.db.conn.execute_fetchall(
            f"SELECT COUNT(*) FROM {self._composes_by_org()} WHERE {where}", (org_id, since, *params))
        return Page([_compose(r) for r in rows], int(counted[0][0]))

    async def delete_compose(self, org_id: str, job_id: str) -> None:
        """Soft delete (as upstream, deleting a deleted compose again succeeds); ComposeNotFound if
        the organisation has no such compose."""
        rows = await self.db.write(
            "UPDATE ib_composes SET deleted = 1 WHERE org_id = ? AND job_id = ? RETURNING job_id",
            (org_id, _uuid(job_id)))
        if not rows:
            raise ComposeNotFound()

    async def count_composes_since(self, org_id: str, window: float,
                                   now: float | None = None) -> int:
        """How many composes the organisation started in the last ``window`` seconds, deleted ones
        included (the quota's count)."""
        since = (time.time() if now is None else now) - window
        rows = await self.db.conn.execute_fetchall(
            _COUNT_SINCE.format(index=self.db.dialect.indexed_by(_COMPOSES_BY_ORG)), (org_id, since))
        return int(rows[0][0])

    # -- blueprints -------------------------------------------------------------------------------

    async def create_blueprint(self, org_id: str, name: str, body: Any, *, description: str = "",
                               account_number: str | None = None, metadata: Any | None = None,
                               service_snapshots: Any | None = None) -> Blueprint:
        """A new blueprint with its version 1; BlueprintNameTaken if the organisation has a live
        blueprint of that name."""
        blueprint_id, version_id, now = str(uuid.uuid4()), str(uuid.uuid4()), time.time()
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO ib_blueprints (id, org_id, account_number, name, description, metadata,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (blueprint_id, org_id, account_number, name, description, _dump(metadata), now))
                await conn.execute(
                    "INSERT INTO ib_blueprint_versions (id, blueprint_id, version, body, created_at,"
                    " service_snapshots) VALUES (?, ?, 1, ?, ?, ?)",
                    (version_id, blueprint_id, _dump(body), now, _dump(service_snapshots)))
        except unique_violation_types() as exc:
            if _is_name_clash(exc):
                raise BlueprintNameTaken() from exc
            raise
        return await self.get_blueprint(org_id, blueprint_id)

    async def get_blueprint(self, org_id: str, blueprint_id: str,
                            version: int | None = None) -> Blueprint:
        """The organisation's live blueprint at ``version`` (None: the latest); BlueprintNotFound
        if there is no such blueprint or version."""
        async with self.db.conn.execute(
                "SELECT b.id, v.id AS version_id, v.version, b.name, b.description, v.body,"
                " b.metadata, v.service_snapshots, b.account_number"
                " FROM ib_blueprints b JOIN ib_blueprint_versions v ON v.blueprint_id = b.id"
                " WHERE b.org_id = ? AND b.id = ? AND b.deleted = 0 AND (CAST(? AS INTEGER) IS NULL OR v.version = ?)"
                " ORDER BY v.version DESC LIMIT 1",
                (org_id, _uuid(blueprint_id), version, version)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise BlueprintNotFound()
        return Blueprint(row["id"], row["version_id"], row["version"], row["name"],
                         row["description"], _load(row["body"]), _load(row["metadata"]),
                         _load(row["service_snapshots"]), row["account_number"])

    async def find_blueprint_by_name(self, org_id: str, name: str) -> BlueprintSummary | None:
        """The organisation's live blueprint of exactly this name (the list's ``name`` filter)."""
        rows = await self.db.conn.execute_fetchall(
            f"{_SUMMARY.format(index='')} AND b.name = ?", (org_id, name))
        return _summary(rows[0]) if rows else None

    async def list_blueprints(self, org_id: str, *, search: str | None = None, limit: int = 100,
                              offset: int = 0) -> Page[BlueprintSummary]:
        """The organisation's live blueprints, last modified first; ``search`` matches a part of the
        name or the description, case-insensitively (upstream's ILIKE '%search%': ``%`` and ``_``
        are wildcards, a backslash escapes them; SQLite folds the case of ASCII letters only, PostgreSQL's
        ILIKE, as upstream, the case of every letter its locale knows)."""
        filters, params = "", []
        if search:
            like = self.db.dialect.like
            filters = f" AND (b.name {like} ? ESCAPE '\\' OR b.description {like} ? ESCAPE '\\')"
            params = [f"%{search}%"] * 2
        index = self.db.dialect.indexed_by(_BY_ORG)
        rows = await self.db.conn.execute_fetchall(
            f"{_SUMMARY.format(index=index)}{filters} ORDER BY last_modified_at DESC, b.id LIMIT ? OFFSET ?",
            (org_id, *params, max(limit, 0), max(offset, 0)))
        counted = await self.db.conn.execute_fetchall(
            f"SELECT COUNT(*) FROM ib_blueprints b {index} WHERE b.org_id = ? AND b.deleted = 0{filters}",
            (org_id, *params))
        return Page([_summary(r) for r in rows], int(counted[0][0]))

    async def update_blueprint(self, org_id: str, blueprint_id: str, name: str, body: Any, *,
                               description: str = "",
                               service_snapshots: Any | None = None) -> Blueprint:
        """Rename/redescribe the blueprint and add its next version with ``body``; the new version.
        BlueprintNotFound / BlueprintNameTaken."""
        bid, version_id, now = _uuid(blueprint_id), str(uuid.uuid4()), time.time()
        try:
            async with self.db.transaction() as conn:
                # Until commit the blueprint's row stays locked by the UPDATE (PostgreSQL; SQLite has one writer):
                # a concurrent update of the same blueprint waits here, and its MAX(version) + 1 below
                # is a later statement that sees this one's version, never the same number.
                changed = await conn.execute_fetchall(
                    "UPDATE ib_blueprints SET name = ?, description = ?"
                    " WHERE org_id = ? AND id = ? AND deleted = 0 RETURNING id",
                    (name, description, org_id, bid))
                if not changed:
                    raise BlueprintNotFound()
                added = await conn.execute_fetchall(
                    "INSERT INTO ib_blueprint_versions (id, blueprint_id, version, body, created_at,"
                    # typed: PostgreSQL reads untyped select-list parameters as text
                    " service_snapshots) SELECT CAST(? AS TEXT), CAST(? AS TEXT), MAX(version) + 1,"
                    " CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION), CAST(? AS TEXT)"
                    " FROM ib_blueprint_versions WHERE blueprint_id = ? RETURNING version",
                    (version_id, bid, _dump(body), now, _dump(service_snapshots), bid))
        except unique_violation_types() as exc:
            if _is_name_clash(exc):
                raise BlueprintNameTaken() from exc
            raise
        # the version this call added, not the latest (a concurrent update may have added one since)
        return await self.get_blueprint(org_id, blueprint_id, int(added[0][0]))

    async def delete_blueprint(self, org_id: str, blueprint_id: str) -> None:
        """Soft delete: the blueprint's composes are marked deleted and its name is freed."""
        bid = _uuid(blueprint_id)
        async with self.db.transaction() as conn:
            gone = await conn.execute_fetchall(
                "UPDATE ib_blueprints SET deleted = 1, name = id"
                " WHERE org_id = ? AND id = ? AND deleted = 0 RETURNING id", (org_id, bid))
            if not gone:
                raise BlueprintNotFound()
            await conn.execute(
                "UPDATE ib_composes SET deleted = 1 WHERE org_id = ? AND blueprint_version_id IN"
                " (SELECT id FROM ib_blueprint_versions WHERE blueprint_id = ?)", (org_id, bid))

    async def blueprint_versions(self, org_id: str, blueprint_id: str) -> list[BlueprintVersion]:
        """The live blueprint's versions, oldest first; BlueprintNotFound."""
        rows = await self.db.conn.execute_fetchall(
            "SELECT v.id, v.version, v.created_at FROM ib_blueprint_versions v"
            " JOIN ib_blueprints b ON b.id = v.blueprint_id"
            " WHERE b.org_id = ? AND b.id = ? AND b.deleted = 0 ORDER BY v.version",
            (org_id, _uuid(blueprint_id)))
        if not rows:
            raise BlueprintNotFound()
        return [BlueprintVersion(r["id"], r["version"], r["created_at"]) for r in rows]

    async def latest_blueprint_version(self, org_id: str, blueprint_id: str) -> int:
        """The live blueprint's latest version number; BlueprintNotFound."""
        return (await self.blueprint_versions(org_id, blueprint_id))[-1].version

    async def blueprint_composes(self, org_id: str, blueprint_id: str, *, version: int | None = None,
                                 limit: int = 100, offset: int = 0,
                                 ignore_image_types: Sequence[str] | None = None,
                                 window: float = COMPOSE_LIST_WINDOW,
                                 now: float | None = None) -> Page[ComposeEntry]:
        """The live composes of the blueprint (of one ``version`` or all) in the last ``window``
        seconds, newest first; BlueprintNotFound if the organisation has no such live blueprint."""
        bid = _uuid(blueprint_id)
        await self.get_blueprint(org_id, blueprint_id)
        since = (time.time() if now is None else now) - window
        ignore, params = _ignore_clause(self.db, ignore_image_types, "c.request")
        where = ("c.org_id = ? AND c.created_at >= ? AND c.deleted = 0 AND v.blueprint_id = ?"
                 f" AND (CAST(? AS INTEGER) IS NULL OR v.version = ?){ignore}")
        args = (org_id, since, bid, version, version, *params)
        joined = "FROM ib_composes c JOIN ib_blueprint_versions v ON v.id = c.blueprint_version_id"
        rows = await self.db.conn.execute_fetchall(
            f"SELECT {_COMPOSE_COLUMNS} {joined} WHERE {where}"
            f" ORDER BY c.created_at DESC, c.{self.db.dialect.rowid} DESC LIMIT ? OFFSET ?",
            (*args, max(limit, 0), max(offset, 0)))
        counted = await self.db.conn.execute_fetchall(f"SELECT COUNT(*) {joined} WHERE {where}", args)
        return Page([_compose(r) for r in rows], int(counted[0][0]))


# the name the HTTP layer imports (from when SQLite was the only backend)
SQLiteImageBuilderStore = DatabaseImageBuilderStore
