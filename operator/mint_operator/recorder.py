"""Kubernetes Events on a MintTenant: what the operator decided and why (``kubectl describe
minttenant`` / ``kubectl get events``). Posting never fails a reconcile; a repeat of the same
event within ``repeat_after`` is not posted again (the resync timer would flood the namespace)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mint_operator import catalog
from mint_operator.kube import ApiError, Kube
from mint_operator.spec import Obj

log = logging.getLogger("mint_operator.events")

NORMAL = "Normal"
WARNING = "Warning"


@dataclass(frozen=True)
class Involved:
    """The object an event is about."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    @classmethod
    def of(cls, body: Obj) -> Involved:
        meta = body.get("metadata") or {}
        return cls(
            api_version=str(body.get("apiVersion") or catalog.API_VERSION),
            kind=str(body.get("kind") or "MintTenant"),
            namespace=str(meta.get("namespace") or "default"),
            name=str(meta["name"]),
            uid=str(meta.get("uid") or ""),
        )


def event_object(target: Involved, kind: str, reason: str, message: str, now: datetime) -> Obj:
    """A core/v1 Event (what ``kubectl describe`` lists)."""
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{target.name}.", "namespace": target.namespace},
        "involvedObject": {
            "apiVersion": target.api_version,
            "kind": target.kind,
            "namespace": target.namespace,
            "name": target.name,
            "uid": target.uid,
        },
        "type": kind,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": catalog.FIELD_MANAGER},
        "reportingComponent": catalog.FIELD_MANAGER,
        "reportingInstance": catalog.FIELD_MANAGER,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventRecorder:
    def __init__(
        self,
        kube: Kube,
        now: Callable[[], datetime],
        repeat_after: timedelta = timedelta(minutes=10),
    ) -> None:
        self.kube = kube
        self.now = now
        self.repeat_after = repeat_after
        self._lock = threading.Lock()
        self._posted: dict[tuple[str, str, str], datetime] = {}

    def post(self, target: Involved, kind: str, reason: str, message: str) -> bool:
        """Post one event; False when it repeats a recent one or the API refused it."""
        key = (target.uid or f"{target.namespace}/{target.name}", reason, message)
        now = self.now()
        with self._lock:
            last = self._posted.get(key)
            if last is not None and now - last < self.repeat_after:
                return False
            self._posted[key] = now
        try:
            self.kube.create(event_object(target, kind, reason, message, now))
        except ApiError as exc:
            log.warning("cannot post event %s on %s/%s: %s", reason, target.kind, target.name, exc)
            return False
        return True

    def normal(self, target: Involved, reason: str, message: str) -> bool:
        return self.post(target, NORMAL, reason, message)

    def warning(self, target: Involved, reason: str, message: str) -> bool:
        return self.post(target, WARNING, reason, message)
