"""Idempotency records in Redis: a retried request gets the first request's answer.

    claim:     SET idem:{key} {"state": "pending", "token": t} NX PX pending_ttl
    complete:  the claimant replaces it with {"state": "done", "response": ...} PX ttl
    wait:      other requests poll (with backoff) until it is done, gone, or their deadline

A claimant that dies leaves a pending record that expires after ``pending_ttl``;
waiters then see it gone and may claim it themselves.
"""

from __future__ import annotations

import json
import secrets

import anyio
import attrs

from . import _scripts
from ._connection import RedisConnection, session_tag
from ._errors import ClusterError, RequestPendingError

__all__ = ["IdempotencyClaim", "IdempotencyRecords"]

_FIRST_POLL = 0.005
_MAX_POLL = 0.1


@attrs.frozen
class IdempotencyClaim:
    """What :meth:`IdempotencyRecords.claim` found.

    Attributes:
        key: The idempotency key.
        owner: True if this request claimed the key and must answer (then ``complete`` it).
        token: The claim's token (owner only), passed to ``complete`` and ``abandon``.
        response: The first request's answer, if it is already done.
    """

    key: str
    owner: bool
    token: str | None = None
    response: str | None = None


class IdempotencyRecords:
    """Put-if-absent records with a TTL, shared by every process.

    Args:
        connection: From :func:`open_redis`.
        ttl: Seconds a completed record is kept (retries within it get the stored answer).
        pending_ttl: Seconds a pending record lives if its claimant never completes it.
    """

    def __init__(self, connection: RedisConnection, *, ttl: float = 600.0, pending_ttl: float = 60.0) -> None:
        self.connection = connection
        self._ttl_ms = max(1, round(ttl * 1000))
        self._pending_ms = max(1, round(pending_ttl * 1000))

    def _key(self, key: str) -> str:
        return self.connection.key("idem", session_tag(key))

    async def claim(self, key: str) -> IdempotencyClaim:
        """Claim ``key`` if nobody has; else report the existing record (pending or done)."""
        from coredis import PureToken

        token = secrets.token_hex(16)
        pending = json.dumps({"state": "pending", "token": token})
        rkey = self._key(key)
        action = f"claim idempotency key {key!r}"
        for _ in range(3):  # a record may expire between SET NX and GET: look again
            if await self.connection.call(
                action, lambda c: c.set(rkey, pending, condition=PureToken.NX, px=self._pending_ms)
            ):
                return IdempotencyClaim(key, True, token)
            raw = await self.connection.call(action, lambda c: c.get(rkey))
            if raw is not None:
                record = json.loads(raw)
                return IdempotencyClaim(key, False, None, record.get("response"))
        raise ClusterError(f"cannot {action}: its record keeps expiring")

    async def complete(self, claim: IdempotencyClaim, response: str) -> bool:
        """Store the answer of a claim; False if the claim had expired or was taken over."""
        if not claim.owner or claim.token is None:
            raise ValueError("only the owner of a claim can complete it")
        record = json.dumps({"state": "done", "token": claim.token, "response": response})
        done = await self.connection.script(
            f"complete idempotency key {claim.key!r}",
            _scripts.IDEMPOTENCY_COMPLETE,
            [self._key(claim.key)],
            [claim.token, record, self._ttl_ms],
        )
        return bool(done)

    async def abandon(self, claim: IdempotencyClaim) -> None:
        """Drop a pending claim (its request failed), so that a retry answers afresh."""
        if claim.owner and claim.token is not None:
            await self.connection.script(
                f"abandon idempotency key {claim.key!r}",
                _scripts.IDEMPOTENCY_ABANDON,
                [self._key(claim.key)],
                [claim.token],
            )

    async def wait(self, key: str, deadline: float) -> str | None:
        """Wait until the record of ``key`` is done and return its answer.

        Returns None if the record is gone (its claimant abandoned it or died): claim it again.

        Raises:
            RequestPendingError: The record was still pending at ``deadline``.
        """
        rkey = self._key(key)
        poll = _FIRST_POLL
        while True:
            raw = await self.connection.call(f"read idempotency key {key!r}", lambda c: c.get(rkey))
            if raw is None:
                return None
            record = json.loads(raw)
            if record.get("state") == "done":
                return str(record["response"])
            now = anyio.current_time()
            if now >= deadline:
                raise RequestPendingError(f"the first request with idempotency key {key!r} is still running")
            await anyio.sleep(min(poll, deadline - now))
            poll = min(poll * 2, _MAX_POLL)
