"""The versioned blueprint store on a real database (SQLite and PostgreSQL): versions, history, tags, undo, workspace,
diff, delete, paging, persistence, concurrency."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pgtest
import pytest

from osbuildd.blueprint import Blueprint
from osbuildd.blueprint.store import (
    BlueprintStore,
    NoBlueprintForCommit,
    UnknownBlueprint,
    UnknownCommit,
)

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def bp(name: str = "test", version: str = "", packages: list | None = None, **extra) -> Blueprint:
    return Blueprint.from_json({"name": name, "version": version, "packages": packages or [], **extra})


async def test_version_rules(store: BlueprintStore) -> None:
    await store.push(bp(version="0.0.1"))
    assert (await store.get_committed("test")).version == "0.0.1"      # first push: no bump
    await store.push(bp(version="0.0.1"))
    assert (await store.get_committed("test")).version == "0.0.2"      # same version: patch + 1
    await store.push(bp(version=""))                                    # empty -> 0.0.0 (Initialize), differs
    assert (await store.get_committed("test")).version == "0.0.0"
    await store.push(bp(version="0.0.0"))
    assert (await store.get_committed("test")).version == "0.0.1"
    await store.push(bp(version="0.1.0"))                               # different: kept
    await store.push(bp(version="0.0.5"))                               # lower: kept too
    assert (await store.get_committed("test")).version == "0.0.5"
    messages = [c.message for c in await store.changes("test")]
    # the message names the version before the bump
    assert messages == ["Recipe test, version 0.0.5 saved.", "Recipe test, version 0.1.0 saved.",
                        "Recipe test, version 0.0.0 saved.", "Recipe test, version 0.0.0 saved.",
                        "Recipe test, version 0.0.1 saved.", "Recipe test, version 0.0.1 saved."]


async def test_history_shape(store: BlueprintStore) -> None:
    first = await store.push(bp(version="1.0.0"))
    second = await store.push(bp(version="1.0.0"), message="my message")
    changes = await store.changes("test")
    assert [c.commit for c in changes] == [second.commit, first.commit]   # newest first
    assert changes[0].message == "my message"
    for c in changes:
        assert COMMIT_RE.match(c.commit) and TIMESTAMP_RE.match(c.timestamp) and c.revision is None
        assert list(c.to_dict()) == ["commit", "message", "revision", "timestamp"]
    # the change keeps the blueprint as pushed, before the bump
    assert (await store.blueprint_at("test", second.commit)).version == "1.0.0"
    assert (await store.get_committed("test")).version == "1.0.1"
    assert await store.changes("nope") == []


async def test_push_initializes_and_hashes(store: BlueprintStore) -> None:
    await store.push(Blueprint.from_json({"name": "u", "customizations": {"user": [{"name": "a", "password": "pw"}]}}))
    got = await store.get_committed("u")
    assert got.version == "0.0.0" and got.customizations.user[0].password.startswith("$6$")


async def test_tag(store: BlueprintStore) -> None:
    with pytest.raises(UnknownBlueprint) as e:
        await store.tag("test")
    assert str(e.value) == "Unknown blueprint: test"
    await store.push(bp(version="0.0.1"))
    await store.push(bp(version="0.0.1"))
    assert await store.tag("test") == 1
    assert await store.tag("test") == 1          # newest already tagged: no-op
    await store.push(bp(version="0.0.3"))
    assert await store.tag("test") == 2
    assert [c.revision for c in await store.changes("test")] == [2, 1, None]


async def test_undo(store: BlueprintStore) -> None:
    await store.push(bp(version="0.0.1", packages=[{"name": "a"}]))
    await store.push(bp(version="0.1.0", packages=[{"name": "b"}]))
    oldest = (await store.changes("test"))[-1]
    change = await store.undo("test", oldest.commit)
    assert change.message == f"test.toml reverted to commit {oldest.commit}"
    now = await store.get_committed("test")
    assert [p.name for p in now.packages] == ["a"] and now.version == "0.0.1"
    assert len(await store.changes("test")) == 3
    # undo to the current version bumps like any push
    await store.undo("test", (await store.changes("test"))[0].commit)
    assert (await store.get_committed("test")).version == "0.0.2"
    with pytest.raises(UnknownCommit) as e:
        await store.undo("test", "d7e5fa641aad45300242a0f273827576e32bfc03")
    assert str(e.value) == "Unknown commit"
    with pytest.raises(UnknownCommit):
        await store.undo("other", oldest.commit)      # commit of another blueprint


async def test_old_changes_without_blueprint(store: BlueprintStore) -> None:
    for i, commit in enumerate(("a" * 40, "b" * 40, "c" * 40)):
        await store.add_old_change("test-old-changes", commit, f"change {i}", "2019-11-27T13:19:00Z")
    changes = await store.changes("test-old-changes")
    assert [c.message for c in changes] == ["change 2", "change 1", "change 0"]
    assert changes[0].blueprint is None
    with pytest.raises(NoBlueprintForCommit) as e:
        await store.undo("test-old-changes", "a" * 40)
    assert str(e.value) == f"no blueprint found for commit {'a' * 40}"
    with pytest.raises(NoBlueprintForCommit):
        await store.blueprint_at("test-old-changes", "b" * 40)
    assert await store.get("test-old-changes") is None


async def test_workspace_and_diff(store: BlueprintStore) -> None:
    """weldr-api-cases TestBlueprintsDiff: new test {httpd 2.4.*}; workspace test {systemd 123}."""
    await store.push(bp(packages=[{"name": "httpd", "version": "2.4.*"}]))
    assert await store.diff("test") == []                    # no workspace: committed vs itself
    await store.set_workspace(bp(packages=[{"name": "systemd", "version": "123"}]))
    got, changed = await store.get("test")
    assert changed is True and got.packages[0].name == "systemd"
    assert (await store.get_committed("test")).packages[0].name == "httpd"
    assert len(await store.changes("test")) == 1            # the workspace makes no commit
    assert await store.diff("test", "NEWEST", "WORKSPACE") == [
        {"new": {"Package": {"name": "systemd", "version": "123"}}, "old": None},
        {"new": None, "old": {"Package": {"name": "httpd", "version": "2.4.*"}}}]
    await store.set_workspace(bp(packages=[{"name": "httpd", "version": "2.5"}, {"name": "vim"}]))
    assert await store.diff("test") == [
        {"new": {"Package": {"name": "httpd", "version": "2.5"}}, "old": {"Package": {"name": "httpd", "version": "2.4.*"}}},
        {"new": {"Package": {"name": "vim"}}, "old": None}]
    with pytest.raises(UnknownCommit) as e:
        await store.diff("test", "f8780ae9cd500ed414a9b60ddf7aef71a7937e12", "NEWEST")
    assert str(e.value) == "ggit-error: revspec 'f8780ae9cd500ed414a9b60ddf7aef71a7937e12' not found (-3)"
    with pytest.raises(UnknownCommit) as e:
        await store.diff("test", "NEWEST", "NEWEST")
    assert str(e.value) == "ggit-error: revspec 'NEWEST' not found (-3)"
    with pytest.raises(UnknownBlueprint):
        await store.diff("missing")
    # a push clears the workspace
    await store.push(bp(packages=[{"name": "zsh"}]))
    got, changed = await store.get("test")
    assert changed is False and got.packages[0].name == "zsh"
    await store.set_workspace(bp(packages=[{"name": "x"}]))
    await store.delete_workspace("test")
    assert (await store.get("test"))[1] is False
    with pytest.raises(UnknownBlueprint):
        await store.delete_workspace("test")


async def test_workspace_only_blueprint(store: BlueprintStore) -> None:
    await store.set_workspace(bp("draft"))
    assert (await store.get("draft"))[1] is True
    assert await store.list_names() == []                   # only committed ones are listed
    assert await store.get_committed("draft") is None


async def test_delete_keeps_history(store: BlueprintStore) -> None:
    await store.push(bp(version="1.0.0"))
    await store.set_workspace(bp(version="1.0.0", packages=[{"name": "x"}]))
    await store.delete("test")
    assert await store.get("test") is None
    assert await store.list_names() == []
    assert len(await store.changes("test")) == 1
    with pytest.raises(UnknownBlueprint) as e:
        await store.delete("test")
    assert str(e.value) == "Unknown blueprint: test"
    await store.push(bp(version="1.0.0"))                    # re-created: no bump, history appended
    assert (await store.get_committed("test")).version == "1.0.0"
    assert len(await store.changes("test")) == 2


async def test_list_paging_is_clamped(store: BlueprintStore) -> None:
    for name in ("c", "a", "b"):
        await store.push(bp(name))
    assert await store.list_names() == ["a", "b", "c"]
    page = await store.list_page(0, 0)
    assert (page.total, page.offset, page.limit, page.names) == (3, 0, 0, [])
    page = await store.list_page(1, 20)
    assert (page.total, page.offset, page.limit, page.names) == (3, 1, 2, ["b", "c"])
    page = await store.list_page(10, 5)
    assert (page.total, page.offset, page.limit, page.names) == (3, 3, 0, [])


async def test_callers_get_copies(store: BlueprintStore) -> None:
    await store.push(bp(packages=[{"name": "a"}]))
    got, _ = await store.get("test")
    got.packages.append(got.packages[0])
    got.name = "changed"
    assert len((await store.get_committed("test")).packages) == 1


async def test_state_survives_reopen(tmp_path: Path, backend: pgtest.Backend) -> None:
    db = await pgtest.open_db(backend, tmp_path / "state.db")
    store = BlueprintStore(db)
    await store.push(bp(version="0.0.1", packages=[{"name": "a"}]))
    await store.push(bp(version="0.0.1"))
    await store.tag("test")
    await store.set_workspace(bp(packages=[{"name": "ws"}]))
    before = [c.to_dict() for c in await store.changes("test")]
    await db.close()

    db = await pgtest.open_db(backend, tmp_path / "state.db")
    try:
        store = BlueprintStore(db)
        got, changed = await store.get("test")
        assert changed and got.packages[0].name == "ws"
        assert (await store.get_committed("test")).version == "0.0.2"
        assert [c.to_dict() for c in await store.changes("test")] == before
        assert before[0]["revision"] == 1
    finally:
        await db.close()


async def test_recorded_session(store: BlueprintStore, recorded) -> None:
    """Replay upstream's recorded composer session (006 .. 035) against the store."""
    for step in ("006", "007"):
        req = recorded(step)["request"]
        body = req["body"]
        await store.push(Blueprint.from_toml(body) if req["content_type"] == "text/x-toml" else Blueprint.from_json(body))
    for step, name in (("014", "oracle-toml"), ("016", "oracle-json")):
        got, changed = await store.get(name)
        assert got.to_dict() == recorded(step)["response"]["body"]["blueprints"][0] and not changed
    await store.push(Blueprint.from_toml(recorded("021")["request"]["body"]))
    assert (await store.get("oracle-toml"))[0].to_dict() == recorded("022")["response"]["body"]["blueprints"][0]

    expected = recorded("023")["response"]["body"]["blueprints"][0]
    changes = await store.changes("oracle-toml")
    assert len(changes) == expected["total"]
    assert [c.message for c in changes] == [c["message"] for c in expected["changes"]]
    oldest = changes[-1].commit

    await store.set_workspace(Blueprint.from_json(recorded("026")["request"]["body"]))
    got, changed = await store.get("oracle-json")
    assert got.to_dict() == recorded("027")["response"]["body"]["blueprints"][0] and changed
    assert await store.diff("oracle-json") == recorded("028")["response"]["body"]["diff"]

    await store.tag("oracle-toml")
    after_tag = recorded("031")["response"]["body"]["blueprints"][0]["changes"]
    assert [c.revision for c in await store.changes("oracle-toml")] == [c["revision"] for c in after_tag]

    assert (await store.blueprint_at("oracle-toml", oldest)).to_dict() == recorded("032")["response"]["body"]

    with pytest.raises(UnknownCommit) as e:
        await store.diff("oracle-toml", oldest, "NEWEST")
    assert str(e.value) == recorded("033")["response"]["body"]["errors"][0]["msg"].replace(
        "f8780ae9cd500ed414a9b60ddf7aef71a7937e12", oldest)

    await store.undo("oracle-toml", oldest)
    after_undo = recorded("035")["response"]["body"]["blueprints"][0]
    changes = await store.changes("oracle-toml")
    assert len(changes) == after_undo["total"]
    assert changes[0].message == f"oracle-toml.toml reverted to commit {oldest}"
    assert [c.revision for c in changes] == [c["revision"] for c in after_undo["changes"]]


async def test_concurrent_pushers_lose_nothing(store: BlueprintStore) -> None:
    """50 tasks push the same blueprint and 50 push their own while readers watch the history."""
    n = 50
    seen: list[list[int]] = [[] for _ in range(5)]
    stop = asyncio.Event()

    async def reader(seen_totals: list[int]) -> None:
        while not stop.is_set():
            changes = await store.changes("shared")
            commits = [c.commit for c in changes]
            assert len(set(commits)) == len(commits)
            seen_totals.append(len(changes))
            got = await store.get("shared")
            if got is not None:
                assert got[0].name == "shared"
            await asyncio.sleep(0)

    async def push_shared(i: int) -> None:
        await store.push(bp("shared", version=f"1.0.{i}", packages=[{"name": f"pkg{i}"}]))

    async def push_own(i: int) -> None:
        await store.push(bp(f"own-{i:02d}", version="0.0.1"))
        await store.push(bp(f"own-{i:02d}", version="0.0.1"))

    readers = [asyncio.create_task(reader(s)) for s in seen]
    await asyncio.gather(*(push_shared(i) for i in range(n)), *(push_own(i) for i in range(n)))
    stop.set()
    await asyncio.gather(*readers)

    changes = await store.changes("shared")
    assert len(changes) == n
    assert sorted(c.blueprint.version for c in changes) == sorted(f"1.0.{i}" for i in range(n))
    # the committed blueprint is the newest change's
    newest = changes[0].blueprint
    assert (await store.get_committed("shared")).packages == newest.packages
    assert len(await store.list_names()) == n + 1
    for i in range(n):
        assert (await store.get_committed(f"own-{i:02d}")).version == "0.0.2"
        assert len(await store.changes(f"own-{i:02d}")) == 2
    for totals in seen:  # each reader saw the history only grow, one whole change at a time
        assert totals == sorted(totals) and totals and all(t <= n for t in totals)
    assert max(max(t) for t in seen) > 0
    # a fresh store on the same file agrees with the cache
    fresh = BlueprintStore(store.db)
    assert await fresh.list_names() == await store.list_names()
    assert (await fresh.get_committed("shared")).to_dict() == (await store.get_committed("shared")).to_dict()


async def test_bad_blueprints_store_nothing(store: BlueprintStore) -> None:
    from osbuildd.blueprint import BlueprintError

    for bad in (bp("a/b"), bp("x\x00"), bp(""), bp(version="1.0")):
        with pytest.raises(BlueprintError):
            await store.push(bad)
        with pytest.raises(BlueprintError):
            await store.set_workspace(bad)
    assert await store.list_names() == []
    assert await store.changes("test") == [] and await store.get("test") is None
