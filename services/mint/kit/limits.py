"""The live limits source (platform.md "The limits file").

Services with the ``limits`` capability (``mint.kit.catalog``) read ``MINT_LIMITS_FILE``
through one :class:`LimitsSource`:

* at start the file is loaded and validated; when it is missing or invalid the defaults shipped
  with the code (``limits_default.yaml``) apply, the reason is logged and :attr:`ready` is False
  until a valid file appears (so the pod never becomes ready on limits it was not given);
* a watcher thread re-reads the file every ``poll_seconds`` (opening the path each time, so a
  rewrite, an atomic rename and kubelet's ``..data`` symlink swap are all seen), applies a valid
  change at once and refuses an invalid one with a logged reason while the previous limits stay;
* :attr:`current` is an immutable snapshot; :attr:`version` is reported as ``limits_version`` in
  ``/readyz`` and as the ``mint_limits_version_info`` gauge.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mint.kit.telemetry import LIMITS_VERSION

log = structlog.get_logger("mint.limits")

DEFAULT_LIMITS_FILE = Path(__file__).with_name("limits_default.yaml")
LIMITS_FILE_ENV = "MINT_LIMITS_FILE"
TIERS: tuple[str, ...] = ("UNVERIFIED", "BASIC", "VERIFIED")
LIMIT_NAMES: tuple[str, ...] = ("per_transaction", "daily", "monthly")
MAX_AMOUNT = 2**63 - 1  # BIGINT / int64

Amount = Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT)]
TierName = Literal["UNVERIFIED", "BASIC", "VERIFIED"]


class LimitsError(ValueError):
    """A limits document that cannot be applied; ``str(exc)`` is the reason."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TierLimits(_Frozen):
    per_transaction: Amount
    daily: Amount
    monthly: Amount

    @model_validator(mode="after")
    def _ordered(self) -> TierLimits:
        if not self.per_transaction <= self.daily <= self.monthly:
            raise ValueError("per_transaction <= daily <= monthly does not hold")
        return self


class Tiers(_Frozen):
    UNVERIFIED: TierLimits
    BASIC: TierLimits
    VERIFIED: TierLimits

    def get(self, tier: str) -> TierLimits:
        if tier not in TIERS:
            raise KeyError(tier)
        limits: TierLimits = getattr(self, tier)
        return limits


class Velocity(_Frozen):
    window_seconds: Annotated[int, Field(strict=True, gt=0, le=31 * 24 * 3600)]
    max_transfers: Annotated[int, Field(strict=True, ge=1)]


class FraudSettings(_Frozen):
    review_threshold: Annotated[int, Field(strict=True, ge=0)]
    block_threshold: Annotated[int, Field(strict=True, ge=0)]
    velocity: Velocity
    review_hold_hours: Annotated[int, Field(strict=True, gt=0, le=24 * 365)]

    @model_validator(mode="after")
    def _thresholds(self) -> FraudSettings:
        if not self.review_threshold < self.block_threshold:
            raise ValueError("review_threshold must be below block_threshold")
        return self


class Limits(_Frozen):
    """One validated limits document (the file format, snake_case)."""

    version: Annotated[str, Field(min_length=1, max_length=63)]
    currency: Literal["USD"]
    tiers: Tiers
    fraud: FraudSettings

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        # `version: 7` (unquoted) is the same opaque version as `version: "7"`.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value.strip() if isinstance(value, str) else value

    def for_tier(self, tier: str) -> TierLimits:
        return self.tiers.get(tier)

    def to_document(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_document(), sort_keys=False)


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "document"
        parts.append(f"{loc}: {err['msg']}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def parse_limits(text: str | bytes) -> Limits:
    """Parse and validate a limits document; :class:`LimitsError` says why it is refused."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LimitsError(f"not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(document, dict):
        raise LimitsError("the document must be a mapping")
    try:
        return Limits.model_validate(document)
    except ValidationError as exc:
        raise LimitsError(_reason(exc)) from None


def load_limits_file(path: str | os.PathLike[str]) -> Limits:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise LimitsError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_limits(raw)


@cache
def default_limits() -> Limits:
    """The limits shipped with the code."""
    return load_limits_file(DEFAULT_LIMITS_FILE)


def write_limits_file(path: str | os.PathLike[str], limits: Limits) -> None:
    """Replace ``path`` atomically (write a temporary file beside it, fsync, rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(limits.to_yaml())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def limits_file_from(settings: Any = None) -> Path | None:
    """``limits_file`` of the settings if they have one, else ``MINT_LIMITS_FILE``."""
    configured = getattr(settings, "limits_file", None) or os.environ.get(LIMITS_FILE_ENV)
    return Path(configured) if configured else None


def _publish_version(version: str) -> None:
    LIMITS_VERSION.clear()
    LIMITS_VERSION.labels(version).set(1)


class LimitsSource:
    """The applied limits of this process, kept in step with the limits file."""

    def __init__(self, path: str | os.PathLike[str] | None, *, poll_seconds: float = 1.0) -> None:
        self.path = Path(path) if path is not None else None
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: str | None = None  # digest of the file content last decided on
        self._suspect: str | None = None  # digest of invalid content seen once (maybe mid-write)
        self._error: str | None = None
        self._fallback = False
        self._current = default_limits()
        if self.path is None:
            log.warning("limits_file_not_configured", detail=f"{LIMITS_FILE_ENV} is not set")
        else:
            self._load_initial(self.path)
        _publish_version(self._current.version)

    @classmethod
    def from_settings(cls, settings: Any = None, *, poll_seconds: float = 1.0) -> LimitsSource:
        return cls(limits_file_from(settings), poll_seconds=poll_seconds)

    # ---- state ----------------------------------------------------------------------------

    @property
    def current(self) -> Limits:
        return self._current

    @property
    def version(self) -> str:
        return self._current.version

    @property
    def error(self) -> str | None:
        """Why the file on disk is not applied (None when it is)."""
        return self._error

    @property
    def fallback(self) -> bool:
        """True while the shipped defaults stand in for a file that was invalid at start."""
        return self._fallback

    @property
    def ready(self) -> bool:
        return not self._fallback

    def for_tier(self, tier: str) -> TierLimits:
        return self._current.for_tier(tier)

    # ---- loading --------------------------------------------------------------------------

    def _read(self, path: Path) -> tuple[bytes | None, str | None]:
        try:
            return path.read_bytes(), None  # opens the path anew: follows a swapped symlink
        except OSError as exc:
            return None, f"cannot read {path}: {exc.strerror or exc}"

    def _load_initial(self, path: Path) -> None:
        raw, problem = self._read(path)
        if raw is not None:
            self._seen = hashlib.sha256(raw).hexdigest()
            try:
                self._current = parse_limits(raw)
                log.info("limits_loaded", path=str(path), version=self._current.version)
                return
            except LimitsError as exc:
                problem = str(exc)
        self._fallback = True
        self._error = problem
        log.error(
            "limits_file_invalid_at_start",
            path=str(path),
            reason=problem,
            detail="using the limits shipped with the code until a valid file appears",
            version=self._current.version,
        )

    def refresh(self) -> bool:
        """Check the file once; True when a new document was applied."""
        if self.path is None:
            return False
        raw, problem = self._read(self.path)
        if raw is None:
            if self._seen is not None or self._error is None:
                self._seen = None
                self._error = problem
                log.error(
                    "limits_refused", path=str(self.path), reason=problem, kept_version=self.version
                )
            return False
        digest = hashlib.sha256(raw).hexdigest()
        if digest == self._seen:
            return False
        try:
            limits = parse_limits(raw)
        except LimitsError as exc:
            if digest != self._suspect and not self._fallback:
                self._suspect = digest  # maybe read mid-write: decide on the next look
                return False
            self._suspect, self._seen, self._error = None, digest, str(exc)
            log.error(
                "limits_refused", path=str(self.path), reason=str(exc), kept_version=self.version
            )
            return False
        self._suspect, self._seen = None, digest
        self._apply(limits)
        return True

    def _apply(self, limits: Limits) -> None:
        with self._lock:
            previous = self._current
            self._current = limits
            self._error = None
            was_fallback, self._fallback = self._fallback, False
        _publish_version(limits.version)
        log.info(
            "limits_applied",
            path=str(self.path),
            version=limits.version,
            previous_version=previous.version,
            replaced_defaults=was_fallback,
        )

    # ---- watching -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the watcher thread (idempotent); does nothing without a file."""
        if self.path is None or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="limits-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:
                log.exception("limits_watch_failed", path=str(self.path))

    def __enter__(self) -> LimitsSource:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def readiness_check(ctx: Any) -> bool:
    """For ``Service.readiness_checks``: not ready while running on fallback defaults."""
    source: LimitsSource = ctx.require_limits()
    return source.ready


LIMITS_READINESS = ("limits", readiness_check)
