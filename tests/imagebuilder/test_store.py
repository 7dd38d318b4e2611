"""The image-builder store (osbuildd/imagebuilder/store.py) on both backends (a real SQLite file and a
fresh PostgreSQL database): organisation scoping, upstream's list / count / soft-delete rules,
blueprint versions; and SQLite's index use."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pgtest
import pytest

from osbuildd.imagebuilder.store import (
    COMPOSE_LIST_WINDOW,
    BlueprintNameTaken,
    BlueprintNotFound,
    ComposeNotFound,
    ImageBuilderStore,
    SQLiteImageBuilderStore,
)
from osbuildd.queue.db import Database, is_unique_violation, unique_violation_types

ORG_A, ORG_B = "000000", "000001"
NOW = 1_800_000_000.0
DAY = 86400.0


@pytest.fixture
async def db(backend: pgtest.Backend, tmp_path: Path) -> AsyncIterator[Database]:
    database = await pgtest.open_db(backend, tmp_path / "x.db")
    yield database
    await database.close()


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """For the tests that ask SQLite's planner (EXPLAIN QUERY PLAN)."""
    database = await Database.open(tmp_path / "x.db")
    yield database
    await database.close()


@pytest.fixture
def store(db: Database) -> SQLiteImageBuilderStore:
    return SQLiteImageBuilderStore(db)


def request(image_type: str = "guest-image", distribution: str = "debian-12") -> dict[str, object]:
    return {"distribution": distribution,
            "image_requests": [{"architecture": "x86_64", "image_type": image_type,
                                "upload_request": {"type": "aws.s3", "options": {}}}]}


def body(packages: list[str] | None = None) -> dict[str, object]:
    return {"distribution": "debian-12", "image_requests": [request()["image_requests"][0]],  # type: ignore[index]
            "customizations": {"packages": packages or []}}


async def add(store: SQLiteImageBuilderStore, org: str, at: float, image_type: str = "guest-image",
              **kw: object) -> str:
    job = str(uuid.uuid4())
    await store.insert_compose(org, job, request(image_type), created_at=at, **kw)  # type: ignore[arg-type]
    return job


def test_the_sqlite_store_is_an_image_builder_store(store: SQLiteImageBuilderStore) -> None:
    typed: ImageBuilderStore = store   # mypy checks the Protocol on the package; this runs the names
    for name in ImageBuilderStore.__dict__:
        if not name.startswith("_"):
            assert callable(getattr(typed, name)), name


# -- composes --------------------------------------------------------------------------------------

async def test_insert_and_get_a_compose(store: SQLiteImageBuilderStore) -> None:
    job = str(uuid.uuid4())
    entry = await store.insert_compose(ORG_A, job.upper(), request(), account_number="42",
                                       email="a@example.com", image_name="img", client_id="api",
                                       created_at=NOW)
    assert entry.id == job   # canonical lower-case uuid
    got = await store.get_compose(ORG_A, job)
    assert got == entry
    assert (got.org_id, got.request, got.created_at, got.image_name, got.client_id) == \
        (ORG_A, request(), NOW, "img", "api")
    assert (got.account_number, got.email, got.image_type) == ("42", "a@example.com", "guest-image")
    assert (got.blueprint_id, got.blueprint_version, got.blueprint_version_id) == (None, None, None)


async def test_another_orgs_compose_is_not_found(store: SQLiteImageBuilderStore) -> None:
    job = await add(store, ORG_A, NOW)
    with pytest.raises(ComposeNotFound) as err:
        await store.get_compose(ORG_B, job)
    assert str(err.value) == "compose entry not found" and err.value.kind.http_status == 404
    with pytest.raises(ComposeNotFound):
        await store.delete_compose(ORG_B, job)
    assert (await store.get_compose(ORG_A, job)).id == job   # B's delete did nothing
    with pytest.raises(ComposeNotFound):
        await store.get_compose(ORG_A, "not-a-uuid")


async def test_compose_list_newest_first_paged_and_counted(store: SQLiteImageBuilderStore) -> None:
    jobs = [await add(store, ORG_A, NOW - i * 60) for i in range(5)]   # jobs[0] is the newest
    others = [await add(store, ORG_B, NOW - i) for i in range(3)]
    page = await store.list_composes(ORG_A, limit=2, offset=1, now=NOW)
    assert [c.id for c in page.items] == jobs[1:3] and page.count == 5
    assert [c.id for c in (await store.list_composes(ORG_A, now=NOW)).items] == jobs
    page_b = await store.list_composes(ORG_B, now=NOW)
    assert [c.id for c in page_b.items] == others and page_b.count == 3
    assert (await store.list_composes("nobody", now=NOW)).count == 0
    empty = await store.list_composes(ORG_A, offset=10, now=NOW)
    assert empty.items == [] and empty.count == 5


async def test_compose_list_covers_the_window_only(store: SQLiteImageBuilderStore) -> None:
    assert COMPOSE_LIST_WINDOW == 14 * DAY
    recent = await add(store, ORG_A, NOW - 13 * DAY)
    await add(store, ORG_A, NOW - 15 * DAY)
    page = await store.list_composes(ORG_A, now=NOW)
    assert [c.id for c in page.items] == [recent] and page.count == 1
    assert (await store.list_composes(ORG_A, now=NOW, window=20 * DAY)).count == 2


async def test_ignore_image_types(store: SQLiteImageBuilderStore) -> None:
    guest = await add(store, ORG_A, NOW - 3, "guest-image")
    aws = await add(store, ORG_A, NOW - 2, "aws")
    edge = await add(store, ORG_A, NOW - 1, "edge-installer")
    untyped = str(uuid.uuid4())
    await store.insert_compose(ORG_A, untyped, {"distribution": "debian-12"}, created_at=NOW)
    page = await store.list_composes(ORG_A, ignore_image_types=["aws", "edge-installer"], now=NOW)
    # as upstream's `<> ALL(list)`: a compose without an image type is left out by a non-empty list
    assert [c.id for c in page.items] == [guest] and page.count == 1
    every = await store.list_composes(ORG_A, ignore_image_types=[], now=NOW)
    assert [c.id for c in every.items] == [untyped, edge, aws, guest] and every.count == 4


async def test_soft_delete(store: SQLiteImageBuilderStore) -> None:
    kept, gone = await add(store, ORG_A, NOW - 1), await add(store, ORG_A, NOW)
    await store.delete_compose(ORG_A, gone)
    with pytest.raises(ComposeNotFound):
        await store.get_compose(ORG_A, gone)
    page = await store.list_composes(ORG_A, now=NOW)
    assert [c.id for c in page.items] == [kept] and page.count == 1
    await store.delete_compose(ORG_A, gone)   # upstream: the row still matches, so no error
    with pytest.raises(ComposeNotFound):
        await store.delete_compose(ORG_A, str(uuid.uuid4()))
    # the quota counts deleted composes too, and only the window
    await add(store, ORG_A, NOW - 20 * DAY)
    assert await store.count_composes_since(ORG_A, 14 * DAY, now=NOW) == 2
    assert await store.count_composes_since(ORG_A, 30 * DAY, now=NOW) == 3
    assert await store.count_composes_since(ORG_B, 30 * DAY, now=NOW) == 0


async def test_a_compose_id_is_unique(store: SQLiteImageBuilderStore) -> None:
    job = await add(store, ORG_A, NOW)
    with pytest.raises(unique_violation_types()) as err:
        await store.insert_compose(ORG_B, job, request())
    # SQLite names the column, PostgreSQL the primary key's constraint
    assert is_unique_violation(err.value, "ib_composes.job_id" if store.db.backend == "sqlite"
                               else "ib_composes_pkey"), err.value
    with pytest.raises(ValueError):
        await store.insert_compose(ORG_A, "nope", request())


# -- blueprints -------------------------------------------------------------------------------------

async def test_create_get_and_version_a_blueprint(store: SQLiteImageBuilderStore) -> None:
    bp = await store.create_blueprint(ORG_A, "web", body(["nginx"]), description="a web server",
                                      account_number="42", metadata={"parent_id": None})
    assert (bp.name, bp.description, bp.version, bp.body) == ("web", "a web server", 1, body(["nginx"]))
    assert (bp.metadata, bp.account_number, bp.service_snapshots) == ({"parent_id": None}, "42", None)
    assert await store.get_blueprint(ORG_A, bp.id) == bp
    v2 = await store.update_blueprint(ORG_A, bp.id, "web2", body(["nginx", "curl"]), description="d2",
                                      service_snapshots={"compliance": None})
    assert (v2.id, v2.version, v2.name, v2.description) == (bp.id, 2, "web2", "d2")
    assert v2.version_id != bp.version_id and v2.service_snapshots == {"compliance": None}
    assert (await store.get_blueprint(ORG_A, bp.id)).version == 2
    old = await store.get_blueprint(ORG_A, bp.id, version=1)
    assert old.body == body(["nginx"]) and old.version_id == bp.version_id
    assert old.name == "web2"   # name and description belong to the blueprint, not the version
    with pytest.raises(BlueprintNotFound):
        await store.get_blueprint(ORG_A, bp.id, version=3)
    versions = await store.blueprint_versions(ORG_A, bp.id)
    assert [(v.id, v.version) for v in versions] == [(bp.version_id, 1), (v2.version_id, 2)]
    assert await store.latest_blueprint_version(ORG_A, bp.id) == 2


async def test_blueprints_are_scoped_by_org(store: SQLiteImageBuilderStore) -> None:
    bp = await store.create_blueprint(ORG_A, "web", body())
    for call in (store.get_blueprint(ORG_B, bp.id), store.blueprint_versions(ORG_B, bp.id),
                 store.latest_blueprint_version(ORG_B, bp.id), store.delete_blueprint(ORG_B, bp.id),
                 store.update_blueprint(ORG_B, bp.id, "x", body()),
                 store.blueprint_composes(ORG_B, bp.id)):
        with pytest.raises(BlueprintNotFound) as err:
            await call
        assert str(err.value) == "blueprint not found"
    assert await store.find_blueprint_by_name(ORG_B, "web") is None
    assert (await store.list_blueprints(ORG_B)).count == 0
    assert (await store.get_blueprint(ORG_A, bp.id)).name == "web"   # B changed nothing
    with pytest.raises(BlueprintNotFound):   # nor may B build from A's blueprint version
        await store.insert_compose(ORG_B, str(uuid.uuid4()), request(), blueprint_version_id=bp.version_id)
    with pytest.raises(BlueprintNotFound):
        await store.get_blueprint(ORG_A, "not-a-uuid")


async def test_names_are_unique_per_org(store: SQLiteImageBuilderStore) -> None:
    first = await store.create_blueprint(ORG_A, "web", body())
    with pytest.raises(BlueprintNameTaken) as err:
        await store.create_blueprint(ORG_A, "web", body())
    assert str(err.value) == "A blueprint with the same name already exists."
    other = await store.create_blueprint(ORG_B, "web", body())   # another org may use the name
    second = await store.create_blueprint(ORG_A, "db", body())
    with pytest.raises(BlueprintNameTaken):
        await store.update_blueprint(ORG_A, second.id, "web", body())
    assert await store.latest_blueprint_version(ORG_A, second.id) == 1   # the failed update added nothing
    await store.delete_blueprint(ORG_A, first.id)   # deleting frees the name
    again = await store.create_blueprint(ORG_A, "web", body())
    assert again.id not in (first.id, other.id)


async def test_blueprint_list_search_and_paging(store: SQLiteImageBuilderStore) -> None:
    a = await store.create_blueprint(ORG_A, "Web server", body(), description="nginx")
    b = await store.create_blueprint(ORG_A, "database", body(), description="postgres for the WEB")
    c = await store.create_blueprint(ORG_A, "cache", body(), description="redis")
    await store.create_blueprint(ORG_B, "web of B", body())
    await store.update_blueprint(ORG_A, a.id, "Web server", body(["curl"]))   # a is now the newest
    page = await store.list_blueprints(ORG_A)
    assert [s.id for s in page.items] == [a.id, c.id, b.id] and page.count == 3
    assert [s.version for s in page.items] == [2, 1, 1]
    assert page.items[0].last_modified_at >= page.items[1].last_modified_at
    found = await store.list_blueprints(ORG_A, search="web")
    assert {s.id for s in found.items} == {a.id, b.id} and found.count == 2   # name or description
    paged = await store.list_blueprints(ORG_A, search="web", limit=1, offset=1)
    assert [s.id for s in paged.items] == [b.id] and paged.count == 2
    assert (await store.list_blueprints(ORG_A, search="w_b")).count == 2      # upstream's ILIKE wildcard
    assert (await store.list_blueprints(ORG_A, search="w\\_b")).count == 0    # escaped: a literal _
    assert (await store.list_blueprints(ORG_A, search="")).count == 3
    exact = await store.find_blueprint_by_name(ORG_A, "Web server")
    assert exact is not None and (exact.id, exact.version) == (a.id, 2)
    assert await store.find_blueprint_by_name(ORG_A, "web server") is None


async def test_blueprint_composes_and_delete(store: SQLiteImageBuilderStore) -> None:
    bp = await store.create_blueprint(ORG_A, "web", body())
    v1 = await add(store, ORG_A, NOW - 3, blueprint_version_id=bp.version_id)
    v2bp = await store.update_blueprint(ORG_A, bp.id, "web", body(["curl"]))
    v2 = await add(store, ORG_A, NOW - 2, blueprint_version_id=v2bp.version_id)
    v2_aws = await add(store, ORG_A, NOW - 1, "aws", blueprint_version_id=v2bp.version_id)
    plain = await add(store, ORG_A, NOW)
    entry = await store.get_compose(ORG_A, v1)
    assert (entry.blueprint_id, entry.blueprint_version, entry.blueprint_version_id) == (bp.id, 1, bp.version_id)
    every = await store.blueprint_composes(ORG_A, bp.id, now=NOW)
    assert [c.id for c in every.items] == [v2_aws, v2, v1] and every.count == 3
    second = await store.blueprint_composes(ORG_A, bp.id, version=2, ignore_image_types=["aws"], now=NOW)
    assert [c.id for c in second.items] == [v2] and second.count == 1
    paged = await store.blueprint_composes(ORG_A, bp.id, limit=1, offset=2, now=NOW)
    assert [c.id for c in paged.items] == [v1] and paged.count == 3
    listed = await store.list_composes(ORG_A, now=NOW)
    assert [(c.id, c.blueprint_version) for c in listed.items] == \
        [(plain, None), (v2_aws, 2), (v2, 2), (v1, 1)]
    await store.delete_blueprint(ORG_A, bp.id)
    for call in (store.get_blueprint(ORG_A, bp.id), store.blueprint_composes(ORG_A, bp.id),
                 store.delete_blueprint(ORG_A, bp.id)):
        with pytest.raises(BlueprintNotFound):
            await call
    left = await store.list_composes(ORG_A, now=NOW)   # its composes were deleted with it
    assert [c.id for c in left.items] == [plain] and left.count == 1
    assert await store.count_composes_since(ORG_A, DAY, now=NOW) == 4   # the quota still counts them
    with pytest.raises(BlueprintNotFound):   # a deleted blueprint's version builds nothing more
        await store.insert_compose(ORG_A, str(uuid.uuid4()), request(), blueprint_version_id=bp.version_id)


# -- the index keeps one organisation's reads off the others' rows -------------------------------------

async def _plan(db: Database, sql: str, params: tuple[object, ...]) -> str:
    rows = await db.conn.execute_fetchall(f"EXPLAIN QUERY PLAN {sql}", params)
    return "\n".join(str(r[3]) for r in rows)


class _Capture:
    """Records the SELECTs the store sends, to ask SQLite for their plans afterwards."""

    def __init__(self, db: Database) -> None:
        self.queries: list[tuple[str, tuple[object, ...]]] = []
        self._conn = db.conn

    def execute_fetchall(self, sql: str, params: object = ()) -> object:
        self.queries.append((sql, tuple(params)))  # type: ignore[arg-type]
        return self._conn.execute_fetchall(sql, params)

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)


async def test_the_compose_queries_use_the_org_index(sqlite_db: Database) -> None:
    db, store = sqlite_db, SQLiteImageBuilderStore(sqlite_db)
    big, small = "big-org", "small-org"
    rows = [(str(uuid.uuid4()), '{"image_requests":[{"image_type":"aws"}]}', NOW - i, big)
            for i in range(10_000)]
    rows += [(str(uuid.uuid4()), '{"image_requests":[{"image_type":"aws"}]}', NOW - i, small)
             for i in range(10)]
    async with db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO ib_composes (job_id, request, created_at, org_id) VALUES (?, ?, ?, ?)", rows)
        await conn.execute("ANALYZE")
    capture = _Capture(db)
    db.conn = capture
    try:
        page = await store.list_composes(small, ignore_image_types=["edge-installer"], now=NOW)
        assert len(page.items) == 10 and page.count == 10
        assert await store.count_composes_since(small, DAY, now=NOW) == 10
    finally:
        db.conn = capture._conn
    assert len(capture.queries) == 3
    for sql, params in capture.queries:
        plan = await _plan(db, sql, params)
        assert re.search(r"SEARCH \w+ USING (COVERING )?INDEX ib_composes_org_created"
                         r" \(org_id=\? AND created_at>\?\)", plan), (sql, plan)
        assert "SCAN c" not in plan and "SCAN ib_composes" not in plan, plan
        assert "TEMP B-TREE" not in plan, plan   # newest first straight from the index


async def test_blueprint_queries_search_not_scan(sqlite_db: Database) -> None:
    db, store = sqlite_db, SQLiteImageBuilderStore(sqlite_db)
    ids = [(str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(3000)]
    async with db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO ib_blueprints (id, org_id, name, created_at) VALUES (?, 'big-org', ?, ?)",
            [(bp, f"bp{i}", NOW) for i, (bp, _) in enumerate(ids)])
        await conn.executemany(
            "INSERT INTO ib_blueprint_versions (id, blueprint_id, version, body, created_at)"
            " VALUES (?, ?, 1, '{}', ?)", [(v, bp, NOW) for bp, v in ids])
        await conn.executemany(
            "INSERT INTO ib_composes (job_id, request, created_at, org_id, blueprint_version_id)"
            " VALUES (?, '{}', ?, 'big-org', ?)",
            [(str(uuid.uuid4()), NOW - i, ids[i][1]) for i in range(3000)])
    mine = await store.create_blueprint("small-org", "mine", body())
    await add(store, "small-org", NOW, blueprint_version_id=mine.version_id)
    async with db.transaction() as conn:
        await conn.execute("ANALYZE")
    capture = _Capture(db)
    db.conn = capture
    try:
        assert (await store.list_blueprints("small-org", search="mi")).count == 1
        assert (await store.blueprint_composes("small-org", mine.id, now=NOW)).count == 1
        assert len(await store.blueprint_versions("small-org", mine.id)) == 1
    finally:
        db.conn = capture._conn
    assert len(capture.queries) == 5
    for sql, params in capture.queries:
        plan = await _plan(db, sql, params)
        assert "SEARCH" in plan and not re.search(r"\bSCAN (b|c|v|ib_\w+)\b", plan), (sql, plan)
