"""Flights: one answer in the making, shared by every request that asks for it.

A request becomes a flight keyed by its ``Idempotency-Key`` (per API key) or by
(session, body digest). A retry of the same request joins the flight instead of
asking again: it waits for the same answer, or replays it once finished (for
``dedupe_window`` seconds). Flights run in the server's task group, not in a
request's task, so any subscriber can read them; when the last subscriber leaves
before the answer is done (every client disconnected), the flight is cancelled,
and so are its provider attempts.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
from anyio.abc import TaskGroup

import valis_actors as va

from ._errors import ApiError

__all__ = ["Flight", "FlightTable"]

logger = logging.getLogger("valis_actors.server")

Job = Callable[["Flight"], Awaitable[va.Reply]]


class Flight:
    """One answer being produced: its chunks so far, then its reply or error."""

    def __init__(self, key: tuple[str, ...], digest: str) -> None:
        self.key = key
        self.digest = digest
        self.chunks: list[str] = []
        self.reply: va.Reply | None = None
        self.error: BaseException | None = None
        self.done = anyio.Event()
        self.scope = anyio.CancelScope()
        self.subscribers = 0
        self.finished_at: float | None = None
        self.joined = 0  # requests that joined instead of asking (retries)
        self._changed = anyio.Event()

    def push(self, chunk: str) -> None:
        self.chunks.append(chunk)
        self._changed.set()
        self._changed = anyio.Event()

    def _finish(self) -> None:
        self.finished_at = anyio.current_time()
        self.done.set()
        self._changed.set()

    async def wait_first(self) -> None:
        """Until the first chunk arrives or the flight ends."""
        while not self.chunks and not self.done.is_set():
            await self._changed.wait()

    async def chunks_from(self, start: int = 0) -> AsyncIterator[str]:
        """Every chunk from ``start`` on, live; then, if none came, the reply's text."""
        index = start
        while True:
            while index < len(self.chunks):
                yield self.chunks[index]
                index += 1
            if self.done.is_set():
                break
            await self._changed.wait()
        if not self.chunks and self.reply is not None and self.reply.text:
            yield self.reply.text  # an ``ask`` flight joined by a streaming retry

    @asynccontextmanager
    async def subscribed(self) -> AsyncIterator[Flight]:
        """Hold the flight open; the last subscriber leaving an unfinished flight cancels it."""
        self.subscribers += 1
        try:
            yield self
        finally:
            self.subscribers -= 1
            if self.subscribers == 0 and not self.done.is_set():
                self.scope.cancel()


class FlightTable:
    """The flights of one server, started in its task group, kept ``window`` seconds after success."""

    def __init__(self, task_group: TaskGroup, window: float, max_kept: int = 10_000) -> None:
        self._tg = task_group
        self._window = window
        self._max_kept = max_kept
        self._flights: OrderedDict[tuple[str, ...], Flight] = OrderedDict()
        self.in_flight = 0
        self.idle = anyio.Event()
        self.idle.set()

    def __len__(self) -> int:
        return len(self._flights)

    def get_or_start(self, key: tuple[str, ...], digest: str, job: Job) -> tuple[Flight, bool]:
        """The flight for ``key`` (joined) or a new one running ``job`` (started).

        Raises:
            ApiError: The key was used with another request body (422).
        """
        self._expire()
        flight = self._flights.get(key)
        if flight is not None:
            if flight.digest != digest:
                raise ApiError(
                    422,
                    "this Idempotency-Key was already used with a different request body; use a new key",
                    code="idempotency_key_reused",
                )
            flight.joined += 1
            return flight, False
        flight = Flight(key, digest)
        self._flights[key] = flight
        self.in_flight += 1
        self.idle = anyio.Event()
        self._tg.start_soon(self._run, flight, job, name=f"flight:{key[0]}")
        return flight, True

    async def _run(self, flight: Flight, job: Job) -> None:
        try:
            with flight.scope:
                try:
                    flight.reply = await job(flight)
                except va.ValisError as exc:
                    flight.error = exc
                except Exception as exc:  # a bug: answered as a 500, logged once with its traceback
                    logger.exception("answering a request failed")
                    flight.error = exc
            if flight.scope.cancelled_caught:
                flight.error = ApiError(499, "every client of this request went away", code="client_closed")
        finally:
            if flight.error is not None or flight.reply is None:
                self._flights.pop(flight.key, None)  # failures are not replayed: a retry asks again
            flight._finish()
            self.in_flight -= 1
            if self.in_flight == 0:
                self.idle.set()

    def _expire(self) -> None:
        now = anyio.current_time()
        flights = self._flights
        while flights:
            key, oldest = next(iter(flights.items()))
            expired = oldest.finished_at is not None and now - oldest.finished_at >= self._window
            if expired or len(flights) > self._max_kept and oldest.done.is_set():
                del flights[key]
            else:
                break
