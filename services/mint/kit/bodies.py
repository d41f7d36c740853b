"""Bounded request bodies (conventions.md "HTTP APIs": 413 and 415), in every service and in the
dev gateway.

:class:`BodyLimitMiddleware` sits between the server and the application and sees every
``http.request`` message before the application does:

- a declared ``Content-Length`` over the bound is answered 413 ``payload_too_large`` at once —
  the application is not called, so nothing parses or authenticates anything;
- without one (chunked), the bytes are counted as they stream in, and the request is answered
  413 as soon as the count passes the bound: the application never gets more than the bound;
- the first bytes of a non-empty body routed to a FastAPI operation that takes a JSON body
  (a pydantic body parameter) are refused with 415 ``unsupported_media_type`` unless the
  Content-Type is ``application/json`` or ``application/*+json`` (parameters such as
  ``charset=utf-8`` allowed). FastAPI itself would read such a body as bytes and answer a 422.
  An empty body needs no Content-Type.

FastAPI reads a JSON body before it solves any dependency, so both refusals come before the
caller is authenticated. The bound is ``MINT_MAX_BODY_BYTES`` (1 MiB), except for
``multipart/form-data``, whose bound is ``MINT_MAX_UPLOAD_BYTES`` (10 MiB) for the file plus
:data:`MULTIPART_OVERHEAD_BYTES` for boundaries, part headers and small fields — an upload route
applies its own, finer checks within it (kyc: ``file_too_large``, types by content).

A refusal in the middle of the body is answered by the middleware itself, on the server's
``send``; the application's ``receive`` then raises :class:`BodyRefused`, and whatever the
application answers to that (FastAPI: a 400) is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from fastapi import params
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mint.kit.errors import problem_response

if TYPE_CHECKING:
    from mint.kit.config import KitSettings

#: What a multipart body may carry beyond its file: boundaries, part headers, small fields.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class BodyLimits:
    body_bytes: int  # any request body but an upload
    upload_bytes: int  # the file of a multipart/form-data upload

    @classmethod
    def from_settings(cls, settings: KitSettings) -> BodyLimits:
        return cls(body_bytes=settings.max_body_bytes, upload_bytes=settings.max_upload_bytes)

    def bound_for(self, content_type: str) -> int:
        """The most bytes a body of ``content_type`` may have."""
        if media_type(content_type) == "multipart/form-data":
            return self.upload_bytes + MULTIPART_OVERHEAD_BYTES
        return self.body_bytes


def media_type(content_type: str) -> str:
    """``Application/JSON; charset=utf-8`` → ``application/json``."""
    return content_type.split(";", 1)[0].strip().lower()


def is_json(content_type: str) -> bool:
    """What FastAPI parses as JSON: ``application/json`` and ``application/*+json``."""
    kind = media_type(content_type)
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def takes_json_body(scope: Scope) -> bool:
    """Whether the operation ``scope`` was routed to parses its body as JSON (a body parameter
    that is not a form or a file). Known once the router has matched — before the body is read."""
    route = scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None:
        return False
    return not isinstance(route.body_field.field_info, params.Form)  # File is a Form too


def too_large(bound: int) -> Response:
    return problem_response(
        413,
        "payload_too_large",
        f"the request body must be at most {bound} bytes",
        max_bytes=bound,
    )


def unsupported_media_type() -> Response:
    return problem_response(
        415, "unsupported_media_type", "send the request body as application/json"
    )


class BodyRefused(Exception):
    """Raised to the application by ``receive`` once its request has been refused."""


class BodyLimitMiddleware:
    """Refuses oversized request bodies (413) and non-JSON bodies to JSON operations (415)
    while they stream in; see the module docstring."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        content_type = headers.get("content-type", "")
        bound = self.limits.bound_for(content_type)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > bound:
            # The server discards the unread body and keeps the connection usable.
            await too_large(bound)(scope, receive, send)
            return
        exchange = _GuardedExchange(scope, receive, send, bound, content_type)
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except Exception as exc:
            # The refusal has been answered; the application only learnt of it by raising.
            if not (exchange.answered and _only_refusals(exc)):
                raise


class _GuardedExchange:
    """One request's ``receive`` (counting, checking) and ``send`` (silenced once refused)."""

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, bound: int, content_type: str
    ) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.bound = bound
        self.content_type = content_type
        self.received = 0
        self.started = False  # the application has started its response
        self.answered = False  # this exchange answered the refusal itself

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        chunk: bytes = message.get("body", b"")
        first_bytes = chunk and self.received == 0  # an empty body needs no Content-Type
        if first_bytes and takes_json_body(self.scope) and not is_json(self.content_type):
            await self._refuse(unsupported_media_type())
        self.received += len(chunk)
        if self.received > self.bound:
            await self._refuse(too_large(self.bound))
        return message

    async def send(self, message: Message) -> None:
        if self.answered:
            return  # the application's answer to a body it never fully got
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def _refuse(self, response: Response) -> NoReturn:
        # On the server's own ``send``: the application's layers (and their "response already
        # started" bookkeeping) never see it. Once the application has started its own
        # response nothing can be answered; the error then ends the connection.
        if not self.started:
            await response(self.scope, self._receive, self._send)
            self.answered = True
        raise BodyRefused(f"request body refused with {response.status_code}")


def _only_refusals(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        _, rest = exc.split(BodyRefused)
        return rest is None
    return isinstance(exc, BodyRefused)
