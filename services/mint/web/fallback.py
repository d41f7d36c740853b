"""The static files (served as they are, no build) and the 404 page for every other path.

web is served at the root of the public site (the gateway and the Ingress route ``/`` to it),
so its own probes and metrics (``/healthz``, ``/readyz``, ``/metrics``, mounted by the kit after
the service's routers) would be public too. A request that came through the edge — the gateway
and the ingress controller always add ``X-Forwarded-For`` — gets the 404 page for them; kubelet
and Prometheus, calling the pod directly, reach the kit's."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Final

from fastapi import APIRouter, Request
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.responses import FileResponse, Response
from starlette.routing import Match
from starlette.types import Scope

from mint.web.views import PageNotFound, PageRoute, Wired, visit
from mint.web.wiring import STATIC

router = APIRouter(route_class=PageRoute, include_in_schema=False)

STATIC_FILES: Final = frozenset(p.name for p in STATIC.iterdir() if p.suffix in (".js", ".css"))
MEDIA_TYPES: Final = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
INTERNAL_PATHS: Final = ("/healthz", "/readyz", "/metrics")
ALL_METHODS: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class PagePath(PathConvertor):
    """Any path but the kit's probes."""

    regex = r"(?!(?:healthz|readyz|metrics)$).*"


register_url_convertor("page_path", PagePath())


def came_through_the_edge(scope: Scope) -> bool:
    return any(name == b"x-forwarded-for" for name, _ in scope.get("headers", ()))


class EdgeOnlyRoute(PageRoute):
    """Matches only requests that came through the gateway / ingress."""

    def matches(self, scope: Scope) -> tuple[Match, MutableMapping[str, Any]]:
        if scope.get("type") == "http" and not came_through_the_edge(scope):
            return Match.NONE, {}
        return super().matches(scope)


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC_FILES:
        raise PageNotFound()
    path = STATIC / name
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[path.suffix],
        headers={"Cache-Control": "public, max-age=300"},
    )


async def not_found(request: Request, wired: Wired) -> Response:
    """The 404 page, for any method (a POST to an unknown path is not a CSRF question)."""
    if request.method in ("GET", "HEAD"):
        await visit(request, wired)  # the header shows the visitor as signed in or not
    raise PageNotFound()


for internal in INTERNAL_PATHS:
    router.add_api_route(
        internal, not_found, methods=ALL_METHODS, route_class_override=EdgeOnlyRoute
    )
router.add_api_route("/{path:page_path}", not_found, methods=ALL_METHODS)
