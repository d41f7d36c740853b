"""The dev gateway on :8080: exactly the ingress routes (services.md table), proxied to each
service's HTTP port. gRPC is never routed. Responses are streamed (SSE works); so are request
bodies, bounded as in every service (:mod:`mint.kit.bodies`: 413 from the gateway itself, while
the body streams, before any of it past the bound reaches a service)."""

from __future__ import annotations

import contextlib
import hmac
import http.cookiejar
import ipaddress
from collections.abc import AsyncIterator, Mapping

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import request_response

from mint.kit.bodies import BodyLimitMiddleware, BodyLimits
from mint.kit.catalog import ROUTES
from mint.kit.config import KitSettings
from mint.kit.errors import problem_body
from mint.kit.security import FORWARDED_FOR, FORWARDED_FOR_PROOF

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def route_for(path: str) -> str | None:
    """The service for ``path``: the longest matching route of the catalogue (as the Ingress)."""
    best: tuple[int, str] | None = None
    for prefix, service, kind in ROUTES:
        if kind == "Exact":
            matched = path == prefix
        else:
            matched = prefix == "/" or path == prefix or path.startswith(prefix + "/")
        if matched and (best is None or len(prefix) > best[0]):
            best = (len(prefix), service)
    return best[1] if best else None


def create_gateway(
    upstreams: Mapping[str, str],
    *,
    limits: BodyLimits | None = None,
    internal_token: str | None = None,
) -> Starlette:
    """``upstreams``: service name → base URL (``http://127.0.0.1:4001``); ``limits``: the body
    bounds, by default those of the environment (``MINT_MAX_BODY_BYTES``,
    ``MINT_MAX_UPLOAD_BYTES``), as the services read them; ``internal_token``: the proof with
    which web names the visitor it calls for (``X-Mint-Forwarded-For``)."""
    limits = limits or BodyLimits.from_settings(KitSettings.load())
    # A proxy must never keep cookies: a jar that refuses every cookie, so one user's
    # Set-Cookie is passed through to that user only and never replayed upstream for another.
    no_cookies = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(30.0, read=None), follow_redirects=False, cookies=no_cookies
    )

    async def proxy(request: Request) -> Response:
        path = request.url.path
        # Dot segments would be resolved on the way upstream (httpx normalises them), letting
        # /api/v1/auth/../../metrics escape its routed prefix: they are never routed.
        if any(segment in (".", "..") for segment in path.split("/")):
            return JSONResponse(
                problem_body(404, "not_found", "no route for a path with dot segments"),
                status_code=404,
                media_type="application/problem+json",
            )
        service = route_for(path)
        base = upstreams.get(service or "")
        if service is None or base is None:
            return JSONResponse(
                problem_body(404, "not_found", f"no route for {request.url.path}"),
                status_code=404,
                media_type="application/problem+json",
            )
        # The gateway is the edge: what a client claims in X-Forwarded-For is not believed,
        # so the services (which trust the gateway) see the real peer and nothing else — or
        # the visitor a first-party app (web) names with the internal token as proof.
        visitor = _client_address(request, internal_token)
        headers = [
            (k, v)
            for k, v in request.headers.items()
            if k.lower() not in HOP_BY_HOP and k.lower() not in _EDGE_ONLY
        ]
        headers.append(("x-forwarded-for", visitor))
        headers.append(("x-forwarded-host", request.headers.get("host", "")))
        headers.append(("x-forwarded-proto", request.url.scheme))
        # The path as the client sent it (still percent-encoded): decoding and re-encoding it
        # would turn an escaped control character or "%2F" into a different URL.
        raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
        url = base + raw_path.decode("latin-1")
        url += f"?{request.url.query}" if request.url.query else ""
        try:
            upstream_req = client.build_request(
                request.method, url, headers=headers, content=_body(request)
            )
        except httpx.InvalidURL:
            return JSONResponse(
                problem_body(400, "bad_request", "the request URL is malformed"),
                status_code=400,
                media_type="application/problem+json",
            )
        try:
            upstream = await client.send(upstream_req, stream=True)
        except httpx.HTTPError:
            return JSONResponse(
                problem_body(503, "dependency_unavailable", f"{service} is not answering"),
                status_code=503,
                media_type="application/problem+json",
            )
        out_headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in upstream.headers.multi_items()
            if k.lower() not in HOP_BY_HOP
        ]
        if request.method != "HEAD" and _small(upstream):
            # Most answers are small JSON with a length: passed on whole, they cost the
            # gateway a fraction of a stream's machinery (the money path's hot answers).
            try:
                body = b"".join([chunk async for chunk in upstream.aiter_raw()])
            finally:
                await upstream.aclose()
            whole = Response(body, status_code=upstream.status_code)
            whole.raw_headers = [*out_headers, (b"content-length", str(len(body)).encode())]
            return whole
        response = StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            background=BackgroundTask(upstream.aclose),
        )
        response.raw_headers = out_headers
        return response

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    # The body bound wraps the proxy: the request stream the proxy forwards is counted, and the
    # 413 answered, by the middleware; the proxy's aborted upstream call is then dropped.
    app = Starlette(lifespan=lifespan, middleware=[Middleware(BodyLimitMiddleware, limits=limits)])
    # Every request is proxied, whatever its method and path: a catch-all route's pattern
    # (``.*``) would not match an escaped newline, and the services answer their own 404 and
    # 405 as problem+json.
    app.router.default = request_response(proxy)
    return app


#: Headers for the gateway alone: never forwarded (one of them is the internal token).
_EDGE_ONLY = frozenset({"x-forwarded-for", FORWARDED_FOR.lower(), FORWARDED_FOR_PROOF.lower()})


def _client_address(request: Request, internal_token: str | None) -> str:
    """The socket peer, or the visitor named by a first-party app proving itself with the
    internal token (a well-formed IP address only)."""
    peer = request.client.host if request.client else "127.0.0.1"
    named, proof = request.headers.get(FORWARDED_FOR), request.headers.get(FORWARDED_FOR_PROOF)
    if not internal_token or named is None or proof is None:
        return peer
    if not hmac.compare_digest(proof.encode(), internal_token.encode()):
        return peer
    try:
        return str(ipaddress.ip_address(named.strip()))
    except ValueError:
        return peer


#: Answers up to this size with a Content-Length are read whole; anything else (SSE, downloads,
#: chunked answers) is streamed.
SMALL_ANSWER_BYTES = 64 * 1024


def _small(upstream: httpx.Response) -> bool:
    length = upstream.headers.get("content-length")
    return length is not None and length.isdigit() and int(length) <= SMALL_ANSWER_BYTES


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        yield chunk
