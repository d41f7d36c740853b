"""An SMTP sink (aiosmtpd, in-process thread) writing every received message as an RFC 5322
`.eml` file into the mail directory."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from mint.infra.process import InfraError, PortBook


def _add_missing_headers(raw: bytes, headers: list[tuple[str, str]]) -> bytes:
    """Prepend each (name, value) whose header the message does not carry already."""
    crlf = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
    head = raw.partition(crlf + crlf)[0]
    present = {
        line.split(b":", 1)[0].strip().lower()
        for line in head.split(crlf)
        if line and not line[:1].isspace() and b":" in line
    }
    extra = b"".join(
        f"{name}: {value}".encode() + crlf
        for name, value in headers
        if value and name.lower().encode() not in present
    )
    return extra + raw


class MailDirHandler:
    """aiosmtpd handler: one `<timestamp>-<uuid>.eml` file per message, written atomically."""

    def __init__(self, mail_dir: Path, log_path: Path) -> None:
        self.mail_dir = mail_dir
        self.log_path = log_path
        self._log_lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        rcpts = ", ".join(str(r) for r in envelope.rcpt_tos)
        mail_from = str(envelope.mail_from or "")
        raw = _add_missing_headers(
            raw,
            [
                ("Return-Path", f"<{mail_from}>" if mail_from else ""),
                ("X-Original-To", rcpts),
                ("To", rcpts),
            ],
        )
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time() % 1:.6f}"[1:]
        name = f"{stamp}Z-{uuid.uuid4().hex}.eml"
        tmp = self.mail_dir / f".{name}.tmp"
        tmp.write_bytes(raw)
        os.replace(tmp, self.mail_dir / name)
        with self._log_lock, self.log_path.open("a") as log:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} from={mail_from} to={rcpts} {name}\n")
        return "250 Message accepted for delivery"


class Smtp:
    name = "smtp"

    def __init__(self, data_dir: Path, ports: PortBook) -> None:
        self.mail_dir = data_dir / "mail"
        self.log_path = data_dir / "logs" / "smtp.log"
        self.ports = ports
        self.port = 0
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def prepare(self) -> None:
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)

    def launch(self) -> None:
        self.port = self.ports.get("smtp")
        handler = MailDirHandler(self.mail_dir, self.log_path)
        self.controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=self.port,
            ready_timeout=10.0,
            enable_SMTPUTF8=True,
            data_size_limit=50 * 1024 * 1024,
        )
        try:
            self.controller.start()
        except Exception as exc:
            self.controller = None
            raise InfraError(f"smtp: cannot listen on 127.0.0.1:{self.port}: {exc}") from exc
        with self.log_path.open("a") as log:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} listening on {self.url}\n")

    def wait_ready(self, timeout: float) -> None:
        if self.controller is None:
            raise InfraError("smtp: not started")

    def stop(self) -> None:
        if self.controller is not None:
            controller, self.controller = self.controller, None
            controller.stop()

    def pids(self) -> dict[str, int]:
        return {}
