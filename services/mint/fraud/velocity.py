"""The sliding-window transfer count of the ``velocity_breach`` rule, in Redis.

One sorted set per sender (``fraud:velocity:<user>``): member = the transaction id, score = the
attempt's time. An attempt costs ONE round trip (a MULTI pipeline: drop what left the window,
add this attempt — ``NX``, so a repeat of the same id counts once and keeps its first time —,
count, refresh the key's expiry). A blocked attempt is taken out again (a second round trip, on
BLOCK only), so the window counts the current attempt and the earlier ones not blocked.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import redis

from mint.kit.domain import Unavailable

KEY_PREFIX = "fraud:velocity:"


def _key(user_id: uuid.UUID) -> str:
    return f"{KEY_PREFIX}{user_id}"


class VelocityWindow:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def count_attempt(
        self, user_id: uuid.UUID, transaction_id: uuid.UUID, now: datetime, window_seconds: int
    ) -> int:
        """Record the attempt and answer how many the window now holds (this one included)."""
        key, at = _key(user_id), now.timestamp()
        pipe = self.client.pipeline(transaction=True)
        pipe.zremrangebyscore(key, "-inf", at - window_seconds)
        pipe.zadd(key, {str(transaction_id): at}, nx=True)
        pipe.zcard(key)
        pipe.expire(key, window_seconds + 60)
        try:
            _, _, count, _ = pipe.execute()
        except redis.RedisError as exc:
            raise Unavailable("dependency_unavailable", f"velocity store: {exc}") from None
        return int(count)

    def forget(self, user_id: uuid.UUID, transaction_id: uuid.UUID) -> None:
        """Take a blocked attempt out of the window."""
        try:
            self.client.zrem(_key(user_id), str(transaction_id))
        except redis.RedisError as exc:
            raise Unavailable("dependency_unavailable", f"velocity store: {exc}") from None
