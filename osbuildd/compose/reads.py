"""How the compose service reads its job rows: a build job's state and upload statuses, the slim
composes of a listing, and ``Snapshot``, the listing polled by the APIs."""

from __future__ import annotations

import bisect
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from osbuildd.queue import Job, JobStatus, errors

from . import store
from .model import LOCAL_TARGETS, Compose, ComposeState

SETTLED = (JobStatus.FINISHED, JobStatus.CANCELED)


@dataclass(frozen=True)
class Snapshot:
    """A listing as settled composes (cached, shared: never mutate) and the others, each ordered by
    (created, id). ``version`` changes whenever ``settled`` does; -1: not from the cache."""
    version: int
    settled: list[Compose]
    live: list[Compose]
    settled_keys: list[tuple[float, str]] | None = None   # (created, id) of each settled one
    # the service's settled composes by id (a superset of ``settled`` while this snapshot is the
    # newest); find() reads it first for the live ones, so a compose that settled since is seen as
    # this snapshot has it
    settled_index: dict[str, Compose] | None = field(default=None, compare=False, repr=False)
    _live_index: dict[str, Compose] = field(default_factory=dict, compare=False, repr=False)

    def composes(self) -> list[Compose]:
        if not self.live:
            return list(self.settled)
        if not self.settled:
            return list(self.live)
        out = list(self.settled)
        keys = list(self.settled_keys) if self.settled_keys is not None else [order_key(c) for c in out]
        for c in self.live:
            i = bisect.bisect_left(keys, order_key(c))
            keys.insert(i, order_key(c))
            out.insert(i, c)
        return out

    def find(self, compose_id: str) -> Compose | None:
        """The compose of that id in this snapshot (slim), None if it has none."""
        if self.live and not self._live_index:
            self._live_index.update((c.id, c) for c in self.live)
        hit = self._live_index.get(compose_id)
        if hit is not None:
            return hit
        if self.settled_index is not None:
            return self.settled_index.get(compose_id)
        return next((c for c in self.settled if c.id == compose_id), None)


def canceled_error(progress: dict[str, Any] | None) -> dict[str, Any]:
    from .failure import CANCELED_BY_USER
    err: dict[str, Any] = {"id": errors.BUILD_JOB, "reason": CANCELED_BY_USER}
    if progress and progress.get("stage"):
        err["details"] = {"kind": "canceled", "stage": progress["stage"]}
    return err


def state_of(build: Job) -> ComposeState:
    if build.status == JobStatus.PENDING:
        return ComposeState.WAITING
    if build.status == JobStatus.RUNNING:
        return ComposeState.RUNNING
    if build.status == JobStatus.CANCELED:
        return ComposeState.CANCELED
    return ComposeState.FAILED if build.error is not None else ComposeState.FINISHED


def slim(c: Compose) -> Compose:
    return dataclasses.replace(c, packages=[], manifest=None, result=None)


def is_settled(found: store.ComposeRows) -> bool:
    """All of a compose's jobs are done: it can only be deleted now, never change."""
    return all(j is None or j.status in SETTLED for j in (found.build, found.depsolve, found.manifest))


def order_key(c: Compose) -> tuple[float, str]:
    return (c.created, c.id)


def upload_statuses(build: Job, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Upstream's upload status list from the build job's ``target_results`` (cloudapi shapes): the
    remote targets in the build's order, the n-th target of a name matched with that name's n-th
    result (a compose may upload to two targets of one kind)."""
    targets = (build.args or {}).get("targets") or []
    results: dict[Any, list[dict[str, Any]]] = {}
    for r in result.get("target_results") or []:
        results.setdefault(r.get("name"), []).append(r)
    out = []
    for t in targets:
        if t.get("name") in LOCAL_TARGETS:
            continue
        same = results.get(t.get("name")) or []
        r = same.pop(0) if same else None
        if build.status == JobStatus.CANCELED:
            status = "failure"
        elif r is None:
            status = "pending" if build.status == JobStatus.PENDING else (
                "running" if build.status == JobStatus.RUNNING else "failure")
        else:
            status = "failure" if r.get("target_error") else "success"
        entry: dict[str, Any] = {"uuid": t.get("uuid", ""), "type": t.get("name"), "status": status,
                                 "image_name": t.get("image_name", ""), "created": t.get("created", ""),
                                 "options": (r or {}).get("options") or {}}
        if r and r.get("target_error"):
            entry["error"] = r["target_error"]
        out.append(entry)
    return out
