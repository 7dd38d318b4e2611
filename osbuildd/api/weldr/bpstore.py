"""The Weldr handlers' view of the versioned blueprint store (``osbuildd.blueprint.store``), with
rendered blueprints cached between writes.

The store's errors (``UnknownCommit``, ``StoreError``...) go through to the Weldr middleware, which
words them as upstream does; only diff's unknown blueprint has its own route-specific answer.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from osbuildd.api.weldr.errors import WeldrError
from osbuildd.blueprint import Blueprint
from osbuildd.blueprint.store import BlueprintStore, Change, UnknownBlueprint


async def names(store: BlueprintStore) -> list[str]:
    return await store.list_names()


async def committed(store: BlueprintStore, name: str) -> Blueprint | None:
    return await store.get_committed(name)


async def workspace(store: BlueprintStore, name: str) -> Blueprint | None:
    return await store.get_workspace(name)


async def current(store: BlueprintStore, name: str) -> tuple[Blueprint | None, bool]:
    """The workspace copy when there is one (``changed``), else the committed blueprint."""
    found = await store.get(name)
    return found if found is not None else (None, False)


class _Views:
    """Rendered JSON of the current blueprints (the hot path of cockpit and composer-cli).

    Every write goes through this module and bumps ``generation``, and so does a change the store
    learns of from another daemon (``BlueprintStore.on_change``); an entry is served only if it was
    read in the current generation, so a read racing a write never serves the old blueprint later.
    """

    def __init__(self) -> None:
        self.generation = 0
        self.entries: dict[str, tuple[int, dict[str, Any] | None, bool]] = {}

    def changed(self) -> None:
        self.generation += 1
        self.entries.clear()


# per store, not per app: two Weldr apps over one store see each other's writes
_VIEWS: weakref.WeakKeyDictionary[BlueprintStore, _Views] = weakref.WeakKeyDictionary()


def _views(store: BlueprintStore) -> _Views:
    views = _VIEWS.get(store)
    if views is None:
        views = _VIEWS[store] = _Views()
        # the store holds the views (not the reverse), so the weak key still goes with the store
        store.on_change(views.changed)
    return views


def watch(store: BlueprintStore) -> None:
    """Follow the store's foreign changes from now on (the app calls it at start; any first use
    would too)."""
    _views(store)


async def current_dict(store: BlueprintStore, name: str) -> tuple[dict[str, Any] | None, bool]:
    """``current()`` as upstream's JSON object (shared: callers must not modify it)."""
    views = _views(store)
    hit = views.entries.get(name)
    if hit is not None and hit[0] == views.generation:
        return hit[1], hit[2]
    generation = views.generation
    bp, changed = await current(store, name)
    rendered = bp.to_dict() if bp is not None else None
    if len(views.entries) > 10000:
        views.entries.clear()
    views.entries[name] = (generation, rendered, changed)
    return rendered, changed


async def changes(store: BlueprintStore, name: str) -> list[Change]:
    return await store.changes(name)


async def at_commit(store: BlueprintStore, name: str, commit: str) -> Blueprint:
    return await store.blueprint_at(name, commit)


async def diff(store: BlueprintStore, name: str, frm: str, to: str) -> list[dict[str, Any]]:
    try:
        return await store.diff(name, frm, to)
    except UnknownBlueprint as e:   # this route's own answer (404; the writes say BlueprintsError)
        raise WeldrError(404, "UnknownBlueprint", f"Unknown blueprint name: {name}") from e


@contextmanager
def _writing(store: BlueprintStore) -> Iterator[None]:
    views = _views(store)
    try:
        yield
    finally:
        views.changed()  # after the write landed (or failed): later reads see it


async def push(store: BlueprintStore, bp: Blueprint) -> None:
    with _writing(store):
        await store.push(bp)


async def push_workspace(store: BlueprintStore, bp: Blueprint) -> None:
    with _writing(store):
        await store.set_workspace(bp)


async def undo(store: BlueprintStore, name: str, commit: str) -> None:
    with _writing(store):
        await store.undo(name, commit)


async def tag(store: BlueprintStore, name: str) -> None:
    with _writing(store):
        await store.tag(name)


async def delete(store: BlueprintStore, name: str) -> None:
    with _writing(store):
        await store.delete(name)


async def delete_workspace(store: BlueprintStore, name: str) -> None:
    with _writing(store):
        await store.delete_workspace(name)
