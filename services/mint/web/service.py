"""The web service description (the only thing the runners import): the user app, server-side
rendered, calling the public APIs through the gateway. No database, no gRPC, no events; its
readiness needs nothing else (a part of Mint that is down is shown as the 503 page)."""

from __future__ import annotations

from mint.kit.service import Service
from mint.web import api, api_kyc, api_money, fallback
from mint.web.settings import Settings
from mint.web.wiring import wire

SERVICE = Service(
    name="web",
    prefix="",
    settings_cls=Settings,
    # the catch-all 404 page last
    routers=[api.router, api_money.router, api_kyc.router, fallback.router],
    wire=wire,
)
