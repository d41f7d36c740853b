"""The first money path end to end through the gateway: register → top up → pay → history,
idempotent replay, object-level authorisation, ledger invariants and the Kafka event."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from confluent_kafka import Consumer

from mint.dev.platform import Platform
from tests.e2e.conftest import User, register, trace_file, wait_for_wallet


def topup(client: httpx.Client, user: User, amount: int, key: str | None = None) -> httpx.Response:
    return client.post(
        "/api/v1/transactions/topup",
        json={"amount": amount, "currency": "USD", "description": "card top-up"},
        headers={**user.headers, "Idempotency-Key": key or str(uuid.uuid4())},
    )


def pay(
    client: httpx.Client, sender: User, recipient: User, amount: int, key: str | None = None
) -> httpx.Response:
    return client.post(
        "/api/v1/transactions/transfer",
        json={"recipient_id": recipient.id, "amount": amount, "description": "dinner"},
        headers={**sender.headers, "Idempotency-Key": key or str(uuid.uuid4())},
    )


def balance(client: httpx.Client, user: User) -> int:
    r = client.get("/api/v1/wallet", headers=user.headers)
    assert r.status_code == 200, r.text
    return int(r.json()["balance"])


def find_event(bootstrap: str, subject: str, ce_type: str, timeout: float = 30) -> dict[str, str]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"e2e-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(["transaction.events"])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            headers = {k: (v or b"").decode() for k, v in (msg.headers() or [])}
            if headers.get("ce_subject") == subject and headers.get("ce_type") == ce_type:
                headers["__value"] = (msg.value() or b"").decode()
                headers["__key"] = (msg.key() or b"").decode()
                return headers
    finally:
        consumer.close()
    raise AssertionError(f"{ce_type} for {subject} not seen on transaction.events in {timeout}s")


def test_register_topup_pay_replay_and_isolation(platform: Platform, gateway: httpx.Client) -> None:
    alice, bob, carol = (register(gateway, n) for n in ("Alice", "Bob", "Carol"))
    for user in (alice, bob, carol):
        wallet = wait_for_wallet(gateway, user)
        assert wallet["balance"] == 0 and wallet["currency"] == "USD"

    # Money-moving POSTs need an Idempotency-Key.
    r = gateway.post("/api/v1/transactions/topup", json={"amount": 100}, headers=alice.headers)
    assert r.status_code == 400 and r.json()["code"] == "idempotency_key_required"

    r = topup(gateway, alice, 10_000)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "COMPLETED" and r.json()["type"] == "TOPUP"

    key = str(uuid.uuid4())
    first = pay(gateway, alice, bob, 2_500, key)
    assert first.status_code == 201, first.text
    txn = first.json()
    assert txn["status"] == "COMPLETED"
    assert (txn["sender_id"], txn["recipient_id"], txn["amount"]) == (alice.id, bob.id, 2_500)

    replay = pay(gateway, alice, bob, 2_500, key)
    assert replay.status_code == 201
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json() == txn
    reused = pay(gateway, alice, bob, 999, key)
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"

    assert balance(gateway, alice) == 7_500
    assert balance(gateway, bob) == 2_500

    history = gateway.get("/api/v1/wallet/history", headers=bob.headers).json()["items"]
    assert [(h["amount"], h["counterparty_id"]) for h in history] == [(2_500, alice.id)]
    alice_hist = gateway.get("/api/v1/wallet/history/", headers=alice.headers).json()["items"]
    assert [h["amount"] for h in alice_hist] == [-2_500, 10_000]
    assert alice_hist[0]["balance_after"] == 7_500

    # Both parties see it; anyone else gets a 404, never a 403.
    for party in (alice, bob):
        r = gateway.get(f"/api/v1/transactions/{txn['id']}", headers=party.headers)
        assert r.status_code == 200 and r.json()["id"] == txn["id"]
    r = gateway.get(f"/api/v1/transactions/{txn['id']}", headers=carol.headers)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    listed = gateway.get("/api/v1/transactions", headers=carol.headers).json()
    assert listed["items"] == []
    mine = gateway.get("/api/v1/transactions/", headers=alice.headers).json()["items"]
    assert {t["id"] for t in mine} >= {txn["id"]}

    # No token → 401 problem.
    with httpx.Client(base_url=platform.gateway_url) as anonymous:
        r = anonymous.get("/api/v1/wallet")
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"

    # The ledger's invariants hold, checked by the CLI a developer would run.
    check = subprocess.run(
        [
            sys.executable,
            "-m",
            "mint.cli",
            "ledger",
            "check",
            "--database-url",
            platform.databases["wallet"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr

    # transaction.completed reaches Kafka as a CloudEvent carrying the request's trace.
    headers = find_event(platform.infra.kafka_bootstrap, txn["id"], "transaction.completed")
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_source"] and headers["ce_id"] and headers["ce_time"]
    assert headers["__key"] == alice.id
    assert json.loads(headers["__value"]) == txn
    trace_id = headers["traceparent"].split("-")[1]
    spans = [json.loads(line) for line in trace_file(platform).read_text().splitlines()]
    services = {s["service"] for s in spans if s["trace_id"] == trace_id}
    assert {"mint-transactions", "mint-wallet"} <= services, services


def test_parallel_transfers_spend_exactly_the_balance(
    platform: Platform, gateway: httpx.Client
) -> None:
    payer, payee = register(gateway, "Payer"), register(gateway, "Payee")
    wait_for_wallet(gateway, payer)
    wait_for_wallet(gateway, payee)
    assert topup(gateway, payer, 3_000).status_code == 201

    def one(_: int) -> int:
        """One payment as a client makes it: past the user's bound on concurrent money
        requests (429) it retries the same key after Retry-After."""
        key = str(uuid.uuid4())
        with httpx.Client(base_url=platform.gateway_url, timeout=60) as c:
            while (r := pay(c, payer, payee, 100, key=key)).status_code == 429:
                time.sleep(float(r.headers["retry-after"]))
            return r.status_code

    with ThreadPoolExecutor(max_workers=25) as pool:
        codes = list(pool.map(one, range(50)))
    assert codes.count(201) == 30, codes
    assert codes.count(422) == 20, codes
    assert balance(gateway, payer) == 0
    assert balance(gateway, payee) == 3_000
    wallet = gateway.get("/api/v1/wallet", headers=payer.headers).json()
    assert wallet["available"] == 0 and wallet["held"] == 0
