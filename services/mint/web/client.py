"""The public APIs, called through the gateway with the user's token (services.md §12).

One ``httpx.Client`` per process (connection reuse); each call answers an :class:`Answer` (any
HTTP status the API chose) or raises :class:`ApiUnavailable` when the API cannot be reached or
answers that a dependency is down — the pages then show the 503 page, never a stack trace."""

from __future__ import annotations

import http.cookiejar
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

log = structlog.get_logger("mint.web.client")

#: Statuses that mean "a part of Mint is down" rather than an answer about the request.
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


class ApiUnavailable(Exception):
    """The API could not be reached, or answered that a dependency is down."""

    def __init__(self, what: str, problem: Mapping[str, Any] | None = None) -> None:
        super().__init__(what)
        self.problem: Mapping[str, Any] = problem or {}


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # parsed JSON (dict / list), or None for an empty body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def problem(self) -> dict[str, Any]:
        """The problem+json of an error answer (an empty dict for anything else)."""
        return self.body if not self.ok and isinstance(self.body, dict) else {}

    @property
    def code(self) -> str:
        return str(self.problem.get("code") or "")

    def json(self) -> dict[str, Any]:
        if not isinstance(self.body, dict):
            raise ValueError(f"expected a JSON object, got {type(self.body).__name__}")
        return self.body


class Api:
    """Calls ``{base}{path}``; ``token`` (an access token) goes in ``Authorization``."""

    def __init__(self, base: str, timeout: float, *, transport: httpx.BaseTransport | None = None):
        self._http = httpx.Client(
            base_url=base,
            timeout=timeout,
            follow_redirects=False,
            transport=transport,
            # Every user's tokens live in their own browser's cookies: the shared client keeps
            # none of the cookies an API sets (a jar that refuses them all).
            cookies=http.cookiejar.CookieJar(
                http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
            ),
        )

    def close(self) -> None:
        self._http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        files: Any = None,
        data: Mapping[str, str] | None = None,
        allow_unavailable: bool = False,
    ) -> Answer:
        """``allow_unavailable``: a 503 is returned as an answer (money requests: its body says
        whether the transaction FAILED or is still PROCESSING) instead of raised."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        try:
            response = self._http.request(
                method, path, json=json, params=params, headers=sent, files=files, data=data
            )
        except httpx.HTTPError as exc:
            log.warning("api_unreachable", method=method, path=path, error=type(exc).__name__)
            raise ApiUnavailable(f"{method} {path}: {type(exc).__name__}") from None
        body = _parsed(response)
        if response.status_code in UNAVAILABLE_STATUSES and not (
            allow_unavailable and response.status_code == 503
        ):
            log.warning("api_unavailable", method=method, path=path, status=response.status_code)
            raise ApiUnavailable(
                f"{method} {path}: {response.status_code}", body if isinstance(body, dict) else None
            )
        return Answer(response.status_code, body)


def _parsed(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return {"code": "unexpected_answer", "detail": "the API answered something unexpected"}
