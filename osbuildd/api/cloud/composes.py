"""Cloud API: GET /composes/, GET and DELETE /composes/{id} (upstream's state machines, notes §1.3).

The statuses are made by ``osbuildd.compose.cloud.status`` (its docstring has the rules).

A status answers from ``ComposeService.snapshot()`` (no SQL while nobody committed) and the bytes of
each compose's status are kept while the compose object is the same (a changed compose is a new
object in the snapshot), so polling costs a dictionary lookup.
"""

from __future__ import annotations

import json
import weakref
from typing import Any

from aiohttp import web

from osbuildd.api import identity
from osbuildd.compose import Compose, ComposeService, ComposeStateError
from osbuildd.compose.cloud.status import compose_status

from .context import services, visible_statuses
from .errors import BASE, CloudError

routes = web.RouteTableDef()


def _dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


class _Rendered:
    """Status bytes per compose, kept while the snapshot hands out the same compose object."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Compose, bytes]] = {}
        self.lists: dict[str | None, tuple[object, int, bytes]] = {}

    def status(self, c: Compose) -> bytes:
        hit = self.entries.get(c.id)
        if hit is not None and hit[0] is c:
            return hit[1]
        body = _dumps(compose_status(c.id, [c]))
        self.entries[c.id] = (c, body)
        return body

    def prune(self, alive: int) -> None:
        if len(self.entries) > 2 * alive + 256:   # deleted composes' entries
            self.entries.clear()


_RENDERED: weakref.WeakKeyDictionary[ComposeService, _Rendered] = weakref.WeakKeyDictionary()


def _rendered(svc: ComposeService) -> _Rendered:
    found = _RENDERED.get(svc)
    if found is None:
        found = _RENDERED[svc] = _Rendered()
    return found


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


# -- routes ---------------------------------------------------------------------------------------


@routes.get(f"{BASE}/composes/{{id}}")
async def get_compose(request: web.Request) -> web.Response:
    cid, images, several = await visible_statuses(request)
    if several:
        return _json(_dumps(compose_status(cid, images)))
    return _json(_rendered(services(request).compose).status(images[0]))


@routes.get(f"{BASE}/composes/")
async def list_composes(request: web.Request) -> web.Response:
    """The caller's composes as a bare array of ComposeStatus sorted by id, as upstream answers
    (recorded 076; the spec says ComposeList). Later images of a compose of several are in their
    compose's entry, not on their own."""
    who = identity.of(request)
    svc = services(request).compose
    snap, groups = await svc.view()
    cache = _rendered(svc)
    hit = cache.lists.get(who.channel)
    if hit is not None and hit[0] is snap and hit[1] == groups.version:
        return _json(hit[2])
    entries = []
    for part in (snap.settled, snap.live):
        for c in part:
            if not who.sees(c.channel) or groups.hidden(c.id):
                continue
            if c.id in groups.members:
                images = [i for i in (snap.find(m) for m in groups.members[c.id]) if i is not None]
                entries.append((c.id, _dumps(compose_status(c.id, images))))
            else:
                entries.append((c.id, cache.status(c)))
    entries.sort(key=lambda e: e[0])
    body = b"[" + b",".join(e[1] for e in entries) + b"]"
    cache.prune(len(snap.settled) + len(snap.live))
    cache.lists[who.channel] = (snap, groups.version, body)
    return _json(body)


@routes.delete(f"{BASE}/composes/{{id}}")
async def delete_compose(request: web.Request) -> web.Response:
    """Delete a compose (every image of it) with its jobs and artifacts, once none of its builds is
    waiting or running. Upstream refuses that with a 500 (id 1023, "Cannot delete job before job is
    finished"); here it is the caller's 400 id 31 with the same words in details."""
    cid, _images, _several = await visible_statuses(request)
    try:
        await services(request).compose.delete_group(cid)
    except ComposeStateError as e:
        raise CloudError(31, f"Cannot delete job before job is finished: {cid} ({e})") from None
    return web.json_response({"href": f"{BASE}/composes/delete/{cid}", "id": cid, "kind": "ComposeDeleteStatus"})
