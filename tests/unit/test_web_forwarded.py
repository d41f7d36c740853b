"""web names its visitor to the gateway (limits per client address — registration, sign-in —
count the visitor, not the app), with the internal token as proof, and only to the platform's
own gateway (never the token to a public URL)."""

from __future__ import annotations

from starlette.requests import Request

from mint.kit.security import FORWARDED_FOR, FORWARDED_FOR_PROOF
from mint.web import rendering
from mint.web.client import Api
from mint.web.settings import Settings
from mint.web.views import Visit
from mint.web.wiring import TEMPLATES, Wiring, refresh_with


def visit_from(peer: str, settings: Settings, forwarded_for: str | None = None) -> Visit:
    headers = [(b"x-forwarded-for", forwarded_for.encode())] if forwarded_for else []
    request = Request(
        {"type": "http", "method": "GET", "path": "/", "headers": headers, "client": (peer, 1)}
    )
    api = Api(settings.api_base, 1.0)
    wiring = Wiring(settings, api, refresh_with(api), rendering.environment(TEMPLATES))
    return Visit(request, wiring, None, "")


def test_the_visitor_is_named_to_the_platforms_gateway() -> None:
    settings = Settings(
        internal_token="t0k3n", gateway_url="http://127.0.0.1:8080", trusted_proxies="127.0.0.1/32"
    )
    # web sits behind the gateway: the visitor is the gateway's forwarded client
    sent = visit_from("127.0.0.1", settings, "198.51.100.9")._forwarded({"Accept": "x"})
    assert sent == {"Accept": "x", FORWARDED_FOR: "198.51.100.9", FORWARDED_FOR_PROOF: "t0k3n"}


def test_no_token_leaves_for_a_public_url() -> None:
    settings = Settings(internal_token="t0k3n", public_url="https://mint.example.com")
    assert visit_from("203.0.113.4", settings)._forwarded(None) == {}
