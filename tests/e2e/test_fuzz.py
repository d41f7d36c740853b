"""Bad input (quality.md): every public operation of auth, wallet, transactions and kyc fuzzed from
the service's own OpenAPI document with schemathesis, through the gateway of the e2e platform.

Each service is fuzzed as a fresh registered user (bearer token, no cookies), so nothing one run
does (logout, password change, a frozen wallet) can leak into another service's run. Checks: no
5xx, every status, content type and header is documented, every body matches its documented
schema, and a route that declares authentication refuses a request without it.

Beyond what the schema suggests, ``hostile`` puts NUL, control characters and friends into the
generated bodies and queries (a NUL in a transfer's description reached PostgreSQL: a 500).

Bounded and repeatable: a fixed seed, derandomized generation, ``MAX_EXAMPLES`` fuzzed cases per
operation on top of the explicit examples and the coverage phase (boundary values and invalid
inputs derived from the schema), no example database; about a minute on a 2-core machine.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, HookContext
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mint.dev.platform import Platform
from tests.e2e.conftest import User, register, wait_for_wallet

PREFIXES = {
    "auth": "/api/v1/auth",
    "wallet": "/api/v1/wallet",
    "transactions": "/api/v1/transactions",
    "kyc": "/api/v1/kyc",
}
MAX_EXAMPLES = 100
SEED = 20240601
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]
#: POSTs that honour (transactions: require) an ``Idempotency-Key``.
IDEMPOTENT_POSTS = ("/topup", "/transfer", "/withdraw", "/documents")
#: Every ``KEYLESS_EVERY``-th such call goes without a key the fuzzer did not generate itself.
KEYLESS_EVERY = 4
#: Login rate limits are per client IP. The gateway (the edge) does not believe a client's
#: X-Forwarded-For, so auth is fuzzed at its own port with the test acting as the trusted proxy:
#: each run presents its own documentation address, and the login failures the fuzzer burns (a
#: 429 after 50 is correct and documented) never throttle other tests' logins from 127.0.0.1.
#: The other services are fuzzed through the gateway.
FUZZ_CLIENT_IP = "192.0.2.{}"
DIRECT = ("auth",)

#: Strings plain generation rarely hits; ``hostile`` puts them into generated bodies and
#: queries: NUL (PostgreSQL text cannot hold it), controls, bidi and BOM marks, an astral
#: character, quoting and path tricks. (Boundary integers come from the coverage phase.)
HOSTILE_STRINGS = (
    "\x00",
    "a\x00b",
    "x" * 40 + "\x00",
    "\r\n\t\x1b[0m",
    "\u202e\ufeff",
    "\U0001f4b8",
    "' OR '1'='1",
    "../../etc/passwd",
    "%00%2F",
)
CONFIG: dict[str, Any] = {
    "seed": SEED,
    "generation": {
        "max-examples": MAX_EXAMPLES,
        "deterministic": True,
        "database": "none",
        "no-shrink": True,
        # The bearer token is the test's (below); generated credentials would only replace it.
        "with-security-parameters": False,
    },
    "phases": {"stateful": {"enabled": False}},
}

Path = tuple[str | int, ...]


def _leaves(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _replaced(value: Any, path: Path, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], rest, new)}
    return [_replaced(item, rest, new) if i == head else item for i, item in enumerate(value)]


def _integers(value: Any) -> Any:
    """JSON Schema counts ``5.0`` as an integer and the generator likes it; the API takes only
    JSON integers (conventions.md, refused with 422). Sent as ``5`` so the case goes deeper."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integers(v) for v in value]
    return value


def hostile(_: HookContext, value: Any) -> st.SearchStrategy[Any]:
    """The generated body / query (integral floats as integers) as is, or with one of its
    strings made hostile."""
    if not isinstance(value, dict | list):
        return st.just(value)
    value = _integers(value)
    paths = [path for path, leaf in _leaves(value) if isinstance(leaf, str)]
    if not paths:
        return st.just(value)
    mutated = st.tuples(st.sampled_from(paths), st.sampled_from(HOSTILE_STRINGS)).map(
        lambda choice: _replaced(value, *choice)
    )
    return st.one_of(st.just(value), mutated, mutated)  # two in three made hostile


@dataclass
class FuzzTarget:
    service: str
    user: User
    client_ip: str
    calls: Iterator[int] = field(default_factory=itertools.count)
    statuses: Counter[int] = field(default_factory=Counter)

    def headers_for(self, case: Case[Any]) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.user.token}", "X-Forwarded-For": self.client_ip}
        present = {k.lower() for k in case.headers or {}}
        if (
            case.method.upper() == "POST"
            and case.path.endswith(IDEMPOTENT_POSTS)
            and "idempotency-key" not in present
            and next(self.calls) % KEYLESS_EVERY
        ):
            headers["Idempotency-Key"] = str(uuid.uuid4())
        return headers


@pytest.fixture(params=list(PREFIXES))
def fuzz_target(request: pytest.FixtureRequest, platform: Platform) -> Iterator[FuzzTarget]:
    service: str = request.param
    with httpx.Client(base_url=platform.gateway_url, timeout=30) as client:
        user = register(client, f"Fuzz{service.title()}")
        wait_for_wallet(client, user)  # the wallet's own routes then answer 200, not only 404
    index = list(PREFIXES).index(service) + 1
    target = FuzzTarget(service=service, user=user, client_ip=FUZZ_CLIENT_IP.format(index))
    started = time.monotonic()
    yield target
    answered = ", ".join(f"{n}x{s}" for s, n in sorted(target.statuses.items()))
    print(
        f"\n[fuzz] {service}: {target.statuses.total()} requests in "
        f"{time.monotonic() - started:.1f}s ({answered})"
    )


@pytest.fixture
def nodeid_compat(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """schemathesis 4.32 names each operation's report by assigning ``item._nodeid``, which
    pytest 9.2 replaced by ``item._id`` (a ``NodeId``): alias it for this test only."""
    if hasattr(request.node, "_nodeid"):
        return
    from _pytest.nodeid import NodeId

    def get(item: pytest.Item) -> str:
        return str(item._id)

    def set_(item: pytest.Item, value: str) -> None:
        item._id = NodeId.parse(value)

    monkeypatch.setattr(pytest.Function, "_nodeid", property(get, set_), raising=False)


@pytest.fixture
def api_schema(fuzz_target: FuzzTarget, platform: Platform, nodeid_compat: None) -> BaseSchema:
    config = schemathesis.Config.from_dict(CONFIG)
    base_url = platform.gateway_url
    if fuzz_target.service in DIRECT:
        base_url = f"http://127.0.0.1:{platform.http_ports[fuzz_target.service]}"
    schema = schemathesis.openapi.from_url(
        f"{base_url}{PREFIXES[fuzz_target.service]}/openapi.json", config=config
    )
    schema.config.update(base_url=base_url)
    schema.hook("flatmap_body")(hostile)
    schema.hook("flatmap_query")(hostile)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_fuzz(case: Case[Any], fuzz_target: FuzzTarget) -> None:
    headers: dict[str, Any] = fuzz_target.headers_for(case)
    response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)
    fuzz_target.statuses[response.status_code] += 1
