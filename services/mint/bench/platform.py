"""The platform under test: the bench's own (as the end-to-end tests start it: embedded servers
and every implemented service in a scratch directory, on free ports, so it runs beside
``make dev``) or one already running (the end-to-end suite's); its users and their money."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from mint.dev.dev import database_owners, prepare
from mint.dev.platform import Platform
from mint.infra import EmbeddedInfra
from mint.kit.runner import implemented_services

Progress = Callable[[str], None]

#: Limits and velocity out of the way: the bench measures the money path, not its refusals.
BENCH_LIMITS = """\
version: "bench"
currency: USD
tiers:
  UNVERIFIED: {per_transaction: 100000000000, daily: 100000000000000, monthly: 100000000000000}
  BASIC: {per_transaction: 100000000000, daily: 100000000000000, monthly: 100000000000000}
  VERIFIED: {per_transaction: 100000000000, daily: 100000000000000, monthly: 100000000000000}
fraud:
  review_threshold: 50
  block_threshold: 100
  velocity: {window_seconds: 60, max_transfers: 100000000}
  review_hold_hours: 72
"""

#: Every bench user registers from 127.0.0.1.
BENCH_ENV = {"MINT_REGISTER_RATE_PER_HOUR": "1000000"}
PASSWORD = "Bench-Horse-42-staple"
SETUP_WORKERS = 4


@dataclass(frozen=True)
class Target:
    """A running platform and the embedded servers it runs on."""

    platform: Platform
    infra: EmbeddedInfra

    @property
    def gateway_url(self) -> str:
        return self.platform.gateway_url

    @property
    def transactions_url(self) -> str:
        return f"http://127.0.0.1:{self.platform.http_ports['transactions']}"

    def service_pids(self) -> dict[str, int]:
        return {
            name: child.proc.pid
            for name, child in self.platform.children.items()
            if child.proc is not None and child.proc.poll() is None
        }


def scratch_directory(parent: Path | None = None) -> Path:
    """A new directory the embedded PostgreSQL's system user can reach (``mint.infra.pg_root``):
    its cluster then stays inside it rather than under /var/tmp/mint-pg."""
    path = Path(tempfile.mkdtemp(prefix="mint-bench-", dir=parent))
    path.chmod(0o755)
    return path


def remove_scratch(path: Path) -> None:
    """Delete ``path`` and any PostgreSQL cluster placed outside it (a ``postgres`` symlink into
    /var/tmp/mint-pg, made when its data directory was private)."""
    for link in [*path.glob("*/postgres"), *path.glob("*/*/postgres")]:
        if link.is_symlink():
            target = Path(os.readlink(link))
            shutil.rmtree(target, ignore_errors=True)
            target.with_name(f"{target.name}.owner").unlink(missing_ok=True)
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def own_platform(scratch: Path, progress: Progress) -> Iterator[Target]:
    """Start the embedded servers and every implemented service in ``scratch``; stop them all."""
    services = implemented_services()
    infra = EmbeddedInfra(scratch / "infra", databases=[])
    platform: Platform | None = None
    try:
        started = time.monotonic()
        progress(f"[bench] starting embedded servers in {scratch} …")
        infra.start()
        root = scratch / ".mint"
        prepare(root)
        (root / "limits.yaml").write_text(BENCH_LIMITS)
        databases = {s: infra.create_database(f"bench_{s}") for s in database_owners(services)}
        platform = Platform(
            root=root,
            infra=infra.endpoints,
            services=services,
            databases=databases,
            spec_ports=False,
            extra_env=BENCH_ENV,
        )
        progress(f"[bench] starting services: {', '.join(services)} …")
        platform.start(timeout=240)
        progress(f"[bench] platform ready in {time.monotonic() - started:.1f} s")
        yield Target(platform, infra)
    finally:
        if platform is not None:
            platform.stop()
        infra.stop()


@dataclass(frozen=True)
class BenchUser:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def register_user(client: httpx.Client) -> BenchUser:
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    answer = client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "name": "Bench User"},
    )
    if answer.status_code != 201:
        raise RuntimeError(f"registering a bench user: {answer.status_code} {answer.text}")
    client.cookies.clear()  # bearer tokens only
    body = answer.json()
    return BenchUser(id=body["user"]["id"], token=body["access_token"])


def wait_for_wallet(client: httpx.Client, user: BenchUser, timeout: float) -> None:
    """Wallets are created from ``auth.user_registered`` over Kafka: wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get("/api/v1/wallet", headers=user.headers)
        if answer.status_code == 200:
            return
        if answer.status_code != 404:
            raise RuntimeError(f"reading a bench wallet: {answer.status_code} {answer.text}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the wallet of user {user.id} was not created in {timeout}s")
        time.sleep(0.2)


def top_up(client: httpx.Client, user: BenchUser, amount: int) -> None:
    answer = client.post(
        "/api/v1/transactions/topup",
        json={"amount": amount, "currency": "USD", "description": "bench funding"},
        headers={**user.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    if answer.status_code != 201:
        raise RuntimeError(f"funding a bench user: {answer.status_code} {answer.text}")


def funded_user(gateway_url: str, amount: int) -> BenchUser:
    """A new user whose wallet holds ``amount`` minor units (its own client: cookies are per
    client and several users are set up at once)."""
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        user = register_user(client)
        wait_for_wallet(client, user, timeout=120)
        top_up(client, user, amount)
        return user


def create_funded_users(
    gateway_url: str, count: int, amount: int, progress: Progress
) -> list[BenchUser]:
    """``count`` funded users, set up a few at a time (registration hashes a password: CPU)."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=SETUP_WORKERS) as pool:
        users = list(pool.map(lambda _: funded_user(gateway_url, amount), range(count)))
    progress(f"[bench] {count} users registered and funded in {time.monotonic() - started:.1f} s")
    return users
