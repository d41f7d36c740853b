"""Finding the running platform from the CLI: which database a command such as
``mint admin create`` or ``mint ledger check`` talks to."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mint.kit.config import psycopg_url

REPO_ROOT = Path(__file__).resolve().parents[3]


def find_runtime_file(start: Path | None = None) -> Path | None:
    """``.mint/runtime.json`` of a running ``make dev``: this directory or a parent, then the
    repository's."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents, REPO_ROOT):
        candidate = directory / ".mint" / "runtime.json"
        if candidate.is_file():
            return candidate
    return None


def database_url_for(service: str, explicit: str | None = None) -> str:
    """``explicit`` (``--database-url``), else ``MINT_DATABASE_URL``, else ``service``'s
    database of the running ``make dev``. Raises LookupError saying what to do."""
    if explicit:
        return psycopg_url(explicit)
    if env := os.environ.get("MINT_DATABASE_URL"):
        return psycopg_url(env)
    runtime = find_runtime_file()
    if runtime is not None:
        try:
            url = json.loads(runtime.read_text(encoding="utf-8"))["databases"][service]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LookupError(f"{runtime} has no {service} database ({exc})") from None
        return psycopg_url(str(url))
    raise LookupError(
        "no database: pass --database-url, set MINT_DATABASE_URL, or start `make dev` "
        "(which writes .mint/runtime.json)"
    )
