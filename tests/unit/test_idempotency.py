"""Idempotency-Key rules and the request fingerprint (conventions.md "Idempotency")."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mint.kit import idempotency
from mint.kit.errors import Problem


@pytest.mark.parametrize("key", ["a", "x" * 255, "order-42:attempt 1", "~!@#$%^&*()"])
def test_valid_keys(key: str) -> None:
    assert idempotency.validate_key(key) == key


def test_missing_key() -> None:
    with pytest.raises(Problem) as info:
        idempotency.validate_key(None)
    assert (info.value.status, info.value.code) == (400, "idempotency_key_required")


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "new\nline", "café", "\x7f"])
def test_invalid_keys(key: str) -> None:
    with pytest.raises(Problem) as info:
        idempotency.validate_key(key)
    assert (info.value.status, info.value.code) == (400, "invalid_idempotency_key")


def test_canonical_json() -> None:
    assert idempotency.canonical_json({"b": 1, "a": {"d": [1, 2], "c": None}}) == (
        '{"a":{"c":null,"d":[1,2]},"b":1}'
    )
    assert idempotency.canonical_json(None) == idempotency.canonical_json({}) == "{}"
    assert idempotency.canonical_json({"s": "é"}) == '{"s":"é"}'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=60)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6))
def test_fingerprint_ignores_key_order_and_whitespace(body: dict[str, Any]) -> None:
    reordered = dict(reversed(list(body.items())))
    spaced = json.loads(json.dumps(body, indent=4))
    fp = idempotency.fingerprint("post", "/api/v1/transactions/topup", body)
    assert fp == idempotency.fingerprint("POST", "/api/v1/transactions/topup", reordered)
    assert fp == idempotency.fingerprint("POST", "/api/v1/transactions/topup", spaced)
    assert len(fp) == 64


def test_fingerprint_distinguishes_method_path_and_body() -> None:
    fp = idempotency.fingerprint("POST", "/p", {"amount": 1})
    assert fp != idempotency.fingerprint("PUT", "/p", {"amount": 1})
    assert fp != idempotency.fingerprint("POST", "/q", {"amount": 1})
    assert fp != idempotency.fingerprint("POST", "/p", {"amount": 2})
    assert fp != idempotency.fingerprint("POST", "/p", {"amount": "1"})


def test_respond() -> None:
    replay = idempotency.respond(idempotency.Replay(status=201, body={"id": "x"}))
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    refused = idempotency.respond(idempotency.Replay(status=422, body={"code": "c"}))
    assert refused.headers["content-type"].startswith("application/problem+json")
    with pytest.raises(Problem) as busy:
        idempotency.respond(idempotency.InProgress())
    assert (busy.value.status, busy.value.code) == (409, "idempotency_request_in_progress")
    with pytest.raises(Problem) as reused:
        idempotency.respond(idempotency.Reused())
    assert (reused.value.status, reused.value.code) == (422, "idempotency_key_reused")
