"""web's collaborators, built once per process: the API client, the token refresher and the
page templates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

from mint.kit.service import ServiceContext
from mint.web import rendering
from mint.web.client import Api, ApiUnavailable
from mint.web.session import Refresher, SignInRequired, Tokens
from mint.web.settings import Settings

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


@dataclass
class Wiring:
    settings: Settings
    api: Api
    refresher: Refresher
    templates: jinja2.Environment


def refresh_with(api: Api) -> Refresher:
    def refresh(refresh_token: str) -> Tokens:
        answer = api.call("POST", "/api/v1/auth/refresh", json={"refresh_token": refresh_token})
        if answer.ok:
            return Tokens.from_auth(answer.json())
        if answer.status in (401, 403):  # expired, revoked, reused, frozen: sign in again
            raise SignInRequired(answer.code)
        raise ApiUnavailable(f"refresh answered {answer.status}", answer.problem)

    return Refresher(refresh)


def wire(ctx: ServiceContext) -> Wiring:
    settings = ctx.settings_as(Settings)
    api = Api(settings.api_base, settings.api_timeout_seconds)
    return Wiring(
        settings=settings,
        api=api,
        refresher=refresh_with(api),
        templates=rendering.environment(TEMPLATES),
    )
