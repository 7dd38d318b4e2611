"""The Weldr middleware is where the services' typed errors get upstream's ids, statuses and texts:
each one raised by the compose service reaches the client worded as before; every API application
stores its state under typed keys, and Weldr opens/closes what it owns in its cleanup_ctx."""

from __future__ import annotations

import types
import warnings
from typing import Any

import pytest
from aiohttp import web

from osbuildd.api import cloud, imagebuilder, worker
from osbuildd.api.weldr import compose as weldr_compose
from osbuildd.api.weldr.util import WELDR
from osbuildd.blueprint import BlueprintError
from osbuildd.compose import ComposeNotFound, ComposeRequestError, ComposeState, ComposeStateError
from osbuildd.config import Config
from osbuildd.depsolve import DepsolveError
from osbuildd.errors import ErrorKind, ServiceError

from .conftest import fixture_daemon


class EngineGone(ServiceError):
    kind = ErrorKind.UNAVAILABLE
    error_id = "NoEngine"


class NoSuchThing(ServiceError):
    kind = ErrorKind.NOT_FOUND
    error_id = "NoSuchThing"


def _state_error(cid: str, operation: str) -> ComposeStateError:
    """One raised by cancel/delete of a compose that settled meanwhile."""
    return ComposeStateError(cid, ComposeState.FINISHED, operation, "wrong state")


START_ERRORS: list[tuple[Exception, int, dict[str, Any]]] = [
    (ComposeRequestError("blueprint.customizations.user", "name is required"), 400,
     {"id": "ManifestCreationFailed", "msg": "failed to initialize osbuild manifest: name is required"}),
    (ComposeRequestError("size", "must be at least 1 GiB"), 400,
     {"id": "ComposeError", "msg": "size: must be at least 1 GiB"}),
    (DepsolveError("not-found", "missing packages: fash", package="fash"), 500,
     {"id": "DepsolveError", "msg": "missing packages: fash"}),
    (BlueprintError("customizations.kernel", "bad option"), 400,
     {"id": "ManifestCreationFailed", "msg": "failed to initialize osbuild manifest: bad option"}),
    (EngineGone("no osbuild engine on this host"), 503, {"id": "NoEngine", "msg": "no osbuild engine on this host"}),
    (NoSuchThing("no such thing"), 400, {"id": "NoSuchThing", "msg": "no such thing"}),
    (RuntimeError("secret detail"), 500, {"id": "InternalError", "msg": "internal error, see the daemon log"}),
]


@pytest.mark.parametrize(("error", "status", "entry"), START_ERRORS, ids=lambda x: type(x).__name__)
async def test_compose_start_errors_are_worded_by_the_middleware(error: Exception, status: int,
                                                                 entry: dict[str, Any]) -> None:
    async with fixture_daemon("NoComposesFixture") as (c, app):
        assert (await c.post_json("/api/v1/blueprints/new", {"name": "test", "version": "0.0.1"})).status == 200

        async def start(req: Any) -> str:
            raise error

        app[WELDR].compose.start = start
        r = await c.post_json("/api/v1/compose", {"blueprint_name": "test", "compose_type": "test_type"})
        assert r.status == status, r.text
        assert r.json() == {"status": False, "errors": [entry]}


async def test_cancel_race_errors_keep_their_texts() -> None:
    """A compose that settles or goes between the state check and the cancel."""
    async with fixture_daemon("BaseFixture") as (c, app):
        composes = app[WELDR].compose
        cid = "30000000-0000-0000-0000-000000000000"   # WAITING
        for raised, want in (
            (_state_error(cid, "cancel"),
             {"id": "BuildInWrongState", "msg": f"Build {cid} is not in WAITING or RUNNING."}),
            (ComposeNotFound(cid), {"id": "UnknownUUID", "msg": f"Compose {cid} doesn't exist"}),
        ):
            async def cancel(compose_id: str, raised: Exception = raised) -> None:
                raise raised

            composes.cancel = cancel
            r = await c.delete(f"/api/v1/compose/cancel/{cid}")
            assert r.status == 400 and r.json() == {"status": False, "errors": [want]}, r.text


async def test_delete_race_is_one_entry_of_the_list() -> None:
    async with fixture_daemon("BaseFixture") as (c, app):
        done, gone = "30000000-0000-0000-0000-000000000002", "30000000-0000-0000-0000-000000000003"

        async def delete(compose_id: str) -> None:
            if compose_id == gone:
                raise ComposeNotFound(compose_id)
            raise _state_error(compose_id, "delete")

        app[WELDR].compose.delete = delete
        r = await c.delete(f"/api/v1/compose/delete/{done},{gone}")
        assert r.status == 200 and r.json() == {"uuids": [], "errors": [
            {"id": "BuildInWrongState", "msg": f"Compose {done} is not in FINISHED or FAILED."},
            {"id": "UnknownUUID", "msg": f"compose {gone} doesn't exist"}]}


async def test_the_listing_coalescer_lives_in_cleanup_ctx() -> None:
    async with fixture_daemon("BaseFixture") as (c, app):
        lists = app[weldr_compose.LISTS]
        assert (await c.get("/api/v1/compose/finished")).status == 200
        assert lists.entries._entries, "the listing rendered entries into the app's cache"
    assert not lists.entries._entries and not lists.info, "closed with the app"


def test_apps_use_typed_keys_only() -> None:
    # the default configuration; no database is opened (the worker API keeps its store's handle on it)
    services: Any = types.SimpleNamespace(config=Config(), db=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", web.NotAppKeyWarning)
        for module in (cloud, imagebuilder, worker):
            app = module.create_app(services)   # stored; create_app reads only its config and handles
            assert all(isinstance(k, web.AppKey) for k in app)
