"""The Weldr handlers' view of the versioned blueprint store (``osbuildd.blueprint.store``).

Store failures become upstream's error ids here, so handlers stay free of try/except.
"""

from __future__ import annotations

import weakref
from typing import Any

from osbuildd.api.weldr.errors import WeldrError, bad_request
from osbuildd.blueprint.store import NoBlueprintForCommit, StoreError, UnknownBlueprint, UnknownCommit


async def names(store: Any) -> list[str]:
    return await store.list_names()


async def committed(store: Any, name: str) -> Any | None:
    return await store.get_committed(name)


async def workspace(store: Any, name: str) -> Any | None:
    return await store.get_workspace(name)


async def current(store: Any, name: str) -> tuple[Any | None, bool]:
    """The workspace copy when there is one (``changed``), else the committed blueprint."""
    found = await store.get(name)
    return found if found is not None else (None, False)


class _Views:
    """Rendered JSON of the current blueprints (the hot path of cockpit and composer-cli).

    Every write goes through this module and bumps ``generation``; an entry is served only if it was
    read in the current generation, so a read racing a write never serves the old blueprint later.
    """

    def __init__(self) -> None:
        self.generation = 0
        self.entries: dict[str, tuple[int, dict[str, Any] | None, bool]] = {}

    def changed(self) -> None:
        self.generation += 1
        self.entries.clear()


_VIEWS: weakref.WeakKeyDictionary[Any, _Views] = weakref.WeakKeyDictionary()


def _views(store: Any) -> _Views:
    views = _VIEWS.get(store)
    if views is None:
        views = _VIEWS[store] = _Views()
    return views


async def current_dict(store: Any, name: str) -> tuple[dict[str, Any] | None, bool]:
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


async def changes(store: Any, name: str) -> list[Any]:
    return await store.changes(name)


async def at_commit(store: Any, name: str, commit: str) -> Any:
    try:
        return await store.blueprint_at(name, commit)
    except UnknownCommit as e:
        raise bad_request("UnknownCommit", str(e)) from e
    except NoBlueprintForCommit as e:
        raise bad_request("BlueprintsError", str(e)) from e


async def diff(store: Any, name: str, frm: str, to: str) -> list[dict[str, Any]]:
    try:
        return await store.diff(name, frm, to)
    except UnknownCommit as e:
        raise bad_request("UnknownCommit", str(e)) from e
    except UnknownBlueprint as e:
        raise WeldrError(404, "UnknownBlueprint", f"Unknown blueprint name: {name}") from e


async def push(store: Any, bp: Any) -> None:
    await _call(store.push, bp)


async def push_workspace(store: Any, bp: Any) -> None:
    await _call(store.set_workspace, bp)


async def undo(store: Any, name: str, commit: str) -> None:
    await _call(store.undo, name, commit)


async def tag(store: Any, name: str) -> None:
    await _call(store.tag, name)


async def delete(store: Any, name: str) -> None:
    await _call(store.delete, name)


async def delete_workspace(store: Any, name: str) -> None:
    await _call(store.delete_workspace, name)


async def _call(fn: Any, *args: Any) -> Any:
    views = _views(fn.__self__)
    try:
        return await fn(*args)
    except UnknownCommit as e:
        raise bad_request("UnknownCommit", str(e)) from e
    except StoreError as e:
        raise bad_request("BlueprintsError", str(e)) from e
    finally:
        views.changed()  # after the write landed (or failed): later reads see it
