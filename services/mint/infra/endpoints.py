"""Where the embedded infrastructure can be reached (written to `.mint/runtime.json`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass
class InfraEndpoints:
    postgres_admin_url: str
    database_urls: dict[str, str]
    redis_url: str
    kafka_bootstrap: str
    kafka_kind: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_region: str
    smtp_url: str
    mail_dir: Path
    pids: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InfraEndpoints:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        kwargs["mail_dir"] = Path(kwargs["mail_dir"])
        kwargs["database_urls"] = dict(kwargs.get("database_urls", {}))
        kwargs["pids"] = {k: int(v) for k, v in dict(kwargs.get("pids", {})).items()}
        return cls(**kwargs)
