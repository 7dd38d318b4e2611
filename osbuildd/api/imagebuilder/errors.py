"""The image-builder API's one error middleware and its identity middleware.

Every failure is answered in image-builder's ``{"errors":[{"title","detail"}]}`` shape (upstream
``HTTPErrorHandler``), except the identity library's refusals, which upstream answers as Go's
``http.Error`` does (plain text ``"Bad Request: <reason>\\n"``). The service layer's errors carry
their status (``osbuildd.imagebuilder.ImageBuilderError``) or a kind (store's not-found errors); a
composer failure nobody handled is a 500 naming the composer's reason (never a secret); anything
else is a logged 500 that names no internals.
"""

from __future__ import annotations

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from osbuildd.api.middleware import INTERNAL_REASON, APIError
from osbuildd.errors import ServiceError
from osbuildd.imagebuilder import ImageBuilderError as ServiceImageBuilderError
from osbuildd.imagebuilder.composer import ComposerError
from osbuildd.imagebuilder.identity import HEADER, IdentityError, check_allowed, parse_identity
from osbuildd.imagebuilder.store import BlueprintNameTaken

from .context import IDENTITY, PREFIXES, SERVICES, ImageBuilderError

log = structlog.get_logger("osbuildd.imagebuilder")

NAME_TAKEN_TITLE = "Name not unique"   # upstream's own title for this 422


def identity_response(e: IdentityError) -> web.Response:
    if e.plain_text:
        return web.Response(status=e.status, text=e.body, content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})
    return ImageBuilderError(e.status, e.message).response()


@web.middleware
async def imagebuilder_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except APIError as e:
        return e.response()
    except IdentityError as e:
        return identity_response(e)
    except web.HTTPException as e:
        return ImageBuilderError(e.status, e.reason).response()
    except ServiceImageBuilderError as e:
        return ImageBuilderError(e.status, e.reason).response()
    except BlueprintNameTaken as e:
        return ImageBuilderError(422, e.reason, title=NAME_TAKEN_TITLE).response()
    except ServiceError as e:
        return ImageBuilderError(e.kind.http_status, e.reason).response()
    except ComposerError as e:
        log.warning("composer refused", path=request.path, status=e.status, reason=e.reason)
        return ImageBuilderError(500, f"Failed to talk to osbuild-composer: {e.reason}").response()
    except Exception:
        log.exception("image-builder handler failed", path=request.path, method=request.method)
        return ImageBuilderError(500, INTERNAL_REASON).response()


def needs_identity(path: str) -> bool:
    """Every route under the prefixes but ``openapi.json`` (upstream's noAuth route); the bare
    ``/status``, ``/ready`` and ``/openapi.json`` need none."""
    for prefix in PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            return path != f"{prefix}/openapi.json"
    return False


@web.middleware
async def require_identity(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``X-Rh-Identity`` parsed and the organisation checked against ``allowed_org_ids`` before
    anything else (unknown routes under the prefixes included, as upstream's group middleware)."""
    if needs_identity(request.path):
        ident = parse_identity(request.headers.getall(HEADER, []))
        check_allowed(ident, request.app[SERVICES].config.image_builder.allowed_org_ids)
        request[IDENTITY] = ident
    return await handler(request)
