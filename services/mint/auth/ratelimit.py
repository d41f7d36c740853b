"""Sliding-window attempt counters in Redis (login brute force, registrations, mail sending).

Each counter is a sorted set of attempts scored by time (ms). :meth:`SlidingWindow.acquire`
checks every counter of an attempt and, only when none is full, records the attempt in all of
them — one Lua script, so concurrent attempts cannot all slip under a limit. An attempt that
turns out not to count (a successful login) is taken back with :meth:`SlidingWindow.release`.

A full counter raises :class:`~mint.kit.domain.RateLimited` (429 with ``Retry-After``) with the
code and detail the use case chose. Redis unavailable: :class:`~mint.kit.domain.Unavailable`,
503 ``dependency_unavailable`` (fail closed). Failing open would
switch the brute-force protection off exactly when an attacker can make Redis struggle, and the
limits are security controls, not conveniences.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import redis
import structlog

from mint.kit.domain import RateLimited, Unavailable

log = structlog.get_logger("mint.auth.ratelimit")

PREFIX = "mint:auth:rl:"

# KEYS: the counters. ARGV: now_ms, member, then (limit, window_ms) per key.
# Returns 0 when the attempt was recorded everywhere, else the ms until the fullest frees up.
_ACQUIRE = """
local now = tonumber(ARGV[1])
local member = ARGV[2]
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local entry = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    local free_at = tonumber(entry[2]) + window
    if free_at - now > wait then wait = free_at - now end
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, tonumber(ARGV[2 + 2 * i]))
end
return 0
"""


@dataclass(frozen=True)
class Rule:
    """At most ``limit`` attempts per ``window_seconds`` for one counter."""

    name: str
    limit: int
    window_seconds: int


LOGIN_PER_EMAIL = Rule("login:email", 5, 15 * 60)
LOGIN_PER_IP = Rule("login:ip", 50, 15 * 60)
MAIL_PER_ACCOUNT = Rule("mail", 5, 60 * 60)
SEARCH_PER_USER = Rule("search:user", 60, 60)


def register_per_ip(per_hour: int) -> Rule:
    return Rule("register:ip", per_hour, 60 * 60)


def hashed(value: str) -> str:
    """Counter keys never hold an email address in clear."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Counter:
    rule: Rule
    subject: str  # an IP address or a hashed email

    @property
    def key(self) -> str:
        return f"{PREFIX}{self.rule.name}:{self.subject}"


@dataclass(frozen=True)
class Reservation:
    member: str
    keys: tuple[str, ...]


class SlidingWindow:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._script = client.register_script(_ACQUIRE)

    def acquire(self, counters: Sequence[Counter], code: str, detail: str) -> Reservation:
        """Record one attempt in every counter, or raise ``RateLimited(code, detail)`` (nothing
        recorded, ``retry_after`` = seconds until the fullest counter frees) when one of them
        is full. Redis errors raise ``Unavailable``."""
        member = f"{time.time_ns()}-{uuid.uuid4().hex}"
        keys = tuple(c.key for c in counters)
        args: list[int | str] = [int(time.time() * 1000), member]
        for counter in counters:
            args += [counter.rule.limit, counter.rule.window_seconds * 1000]
        try:
            wait_ms = int(self._script(keys=list(keys), args=args))
        except redis.RedisError as exc:
            log.warning("rate_limit_unavailable", error=type(exc).__name__)
            raise Unavailable(detail="rate limiting is unavailable; try again later") from exc
        if wait_ms > 0:
            raise RateLimited(code, detail, retry_after=max(1, math.ceil(wait_ms / 1000)))
        return Reservation(member, keys)

    def release(self, reservation: Reservation) -> None:
        """Take back an attempt that does not count. Best effort: a failure only leaves the
        attempt counted until its window passes."""
        try:
            with self.client.pipeline(transaction=True) as pipe:
                for key in reservation.keys:
                    pipe.zrem(key, reservation.member)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("rate_limit_release_failed", error=type(exc).__name__)
