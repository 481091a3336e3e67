"""The server's state, and how a parsed request becomes a flight on the runtime."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import TYPE_CHECKING

import anyio
import attrs

import valis_actors as va

from ._errors import ApiError
from ._flights import Flight, FlightTable
from ._requests import ChatRequest
from ._sessions import ResolvedSession, resolve_session
from ._settings import ServerSettings

if TYPE_CHECKING:
    from valis_actors.cluster import ClusterMode, IdempotencyRecords

__all__ = ["Accepted", "Service"]


@attrs.frozen
class Accepted:
    """A request on its way: its flight, its session, and whether it joined an earlier one."""

    flight: Flight
    session: ResolvedSession
    started: bool


class Service:
    """What the endpoints share: the runtime, the settings, the flights, the drain flag."""

    def __init__(
        self,
        runtime: va.Runtime,
        settings: ServerSettings,
        flights: FlightTable,
        *,
        cluster: ClusterMode | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self.flights = flights
        # Cluster mode: flights are shared by every worker through records in Redis
        # (an Idempotency-Key for the idempotency ttl, a body digest for the dedupe window).
        self.cluster = cluster
        self._records: dict[str, IdempotencyRecords] = {}
        if cluster is not None:
            from valis_actors.cluster import IdempotencyRecords

            self._records["idem"] = cluster.cluster.idempotency
            self._records["body"] = IdempotencyRecords(cluster.cluster.connection, ttl=settings.dedupe_window)
        self.draining = False
        self._keys = [key.encode() for key in settings.api_keys]
        self._prompts: dict[str, str] = {}

    # --- auth -------------------------------------------------------------------------

    def authenticate(self, headers: Mapping[str, str]) -> str | None:
        """The caller's key fingerprint (None without auth).

        Raises:
            ApiError: Keys are configured and the request carries none of them (401).
        """
        given = headers.get("x-api-key")
        auth = headers.get("authorization", "")
        if given is None and auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        if not self._keys:
            return None
        presented = (given or "").encode()
        # Compare against every key, always: the time taken says nothing about which matched.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(presented, key)
        if not matched:
            raise ApiError(
                401,
                "missing or wrong API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
                type="authentication_error",
                code="invalid_api_key",
            )
        return hashlib.sha256(presented).hexdigest()[:16]

    # --- personas ---------------------------------------------------------------------

    def persona(self, persona_id: str) -> va.Persona:
        store = self.runtime.personas
        if not store.is_known(persona_id):
            known = ", ".join(sorted(store.personas)) or "none"
            raise ApiError(
                404,
                f"unknown model {persona_id!r}: models are persona ids; known: {known}",
                type="not_found_error",
                code="model_not_found",
                param="model",
            )
        return store.get(persona_id)

    def _system_prompt(self, persona: va.Persona, client: str | None) -> str | None:
        mode = self.settings.system_message
        if client is None or mode == "ignore":
            return None
        if mode == "replace":
            return client
        prompt = self._prompts.get(persona.id)
        if prompt is None:
            prompt = self._prompts[persona.id] = va.render_system_prompt(persona)
        return prompt + "\n\n" + client

    # --- answering --------------------------------------------------------------------

    def accept(
        self, request: ChatRequest, headers: Mapping[str, str], key: str | None, body: bytes
    ) -> Accepted:
        """Start (or join) the flight answering ``request``.

        Raises:
            ApiError: Unknown persona, a reused Idempotency-Key, or draining.
        """
        if self.draining:
            raise ApiError(
                503,
                "the server is shutting down; retry on another instance or in a few seconds",
                type="overloaded_error",
                code="shutting_down",
                retry=True,
                retry_after=self.settings.retry_after,
            )
        persona = self.persona(request.persona)
        session = resolve_session(headers, request, key)
        digest = hashlib.sha256(body).hexdigest()
        idem = headers.get("idempotency-key")
        flight_key = ("idem", key or "", idem) if idem else ("body", session.session_id, digest)
        # A strong session id with no history sent: the runtime's stored memory is the history.
        history = None if session.strong and not request.sent_history else request.history
        system_prompt = self._system_prompt(persona, request.system)
        runtime = self.runtime

        records = self._records.get(flight_key[0])

        async def job(flight: Flight) -> va.Reply:
            if records is not None:
                from ._cluster import deduplicated

                deadline = anyio.current_time() + runtime.config.response_deadline
                record_key = hashlib.sha256("\0".join(flight_key).encode()).hexdigest()
                return await deduplicated(records, record_key, deadline, lambda: answer(flight))
            return await answer(flight)

        async def answer(flight: Flight) -> va.Reply:
            if not request.stream:
                return await runtime.ask(
                    session.session_id, persona.id, request.message, history=history, system_prompt=system_prompt
                )
            async with runtime.stream(
                session.session_id, persona.id, request.message, history=history, system_prompt=system_prompt
            ) as chunks:
                async for chunk in chunks:
                    flight.push(chunk)
            if chunks.reply is None:
                raise va.IncompleteAnswerError("the stream ended without a reply")
            return chunks.reply

        flight, started = self.flights.get_or_start(flight_key, digest, job)
        return Accepted(flight, session, started)
