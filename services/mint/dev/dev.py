"""``mint dev``: the whole platform on embedded infrastructure, data in ``.mint/``."""

from __future__ import annotations

import shutil
import signal
import threading
from pathlib import Path

from mint.infra import EmbeddedInfra
from mint.kit.catalog import CAPABILITIES
from mint.kit.runner import implemented_services

DEFAULT_LIMITS = Path(__file__).resolve().parents[1] / "kit" / "limits_default.yaml"


def prepare(root: Path) -> None:
    """Generate what a fresh checkout needs: directories, a signing key, the limits file."""
    for sub in ("keys", "logs", "mail"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "keys").chmod(0o700)
    from mint.auth.keys import ensure_signing_key

    ensure_signing_key(root / "keys")
    limits = root / "limits.yaml"
    if not limits.exists():
        shutil.copyfile(DEFAULT_LIMITS, limits)


def database_owners(services: list[str]) -> list[str]:
    return [s for s in services if CAPABILITIES[s].database]


def run_dev(root: Path) -> None:
    from mint.dev.platform import Platform

    root = root.resolve()
    prepare(root)
    services = implemented_services()
    owners = database_owners(services)
    print(f"[mint dev] starting embedded infrastructure in {root} …", flush=True)
    # Servers keep their data beside the keys and logs: .mint/postgres, .mint/kafka, .mint/s3,
    # and mail lands in .mint/mail.
    infra = EmbeddedInfra(root, databases=owners)
    endpoints = infra.start()
    platform = Platform(
        root=root,
        infra=endpoints,
        services=services,
        databases={s: endpoints.database_urls[s] for s in owners},
    )
    stopped = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        print(f"[mint dev] starting services: {', '.join(services)} …", flush=True)
        platform.start(timeout=180)
        _banner(platform, root)
        stopped.wait()
    finally:
        print("\n[mint dev] stopping …", flush=True)
        platform.stop()
        infra.stop()
        print("[mint dev] stopped.", flush=True)


def _banner(platform: object, root: Path) -> None:
    from mint.dev.platform import Platform

    assert isinstance(platform, Platform)
    lines = [
        "",
        f"  Mint is running:      http://localhost:{platform.gateway_port}",
        "",
    ]
    for name in platform.services:
        grpc = platform.grpc_ports.get(name)
        lines.append(
            f"    {name:<14} http :{platform.http_ports[name]}"
            + (f"   grpc :{grpc}" if grpc else "")
            + f"   log {root / 'logs' / (name + '.log')}"
        )
    lines += [
        "",
        f"  Infrastructure:       postgres {platform.infra.postgres_admin_url.split('@')[-1]}, "
        f"kafka {platform.infra.kafka_bootstrap}, redis {platform.infra.redis_url}",
        f"  Mail lands in:        {platform.infra.mail_dir} (one .eml per message)",
        "  Create an admin:      .venv/bin/mint admin create --email admin@example.com "
        "--password '<password>' --name Admin",
        "  Check the ledger:     .venv/bin/mint ledger check",
        f"  Runtime description:  {root / 'runtime.json'}",
        "  Stop with Ctrl-C.",
        "",
    ]
    print("\n".join(lines), flush=True)
