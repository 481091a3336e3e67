"""Shared by the server tests: a real Hypercorn on 127.0.0.1:0 in the test's task group."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anthropic
import anyio
import attrs
import httpx
import openai
import opentelemetry.trace  # noqa: F401 - imported here, not first inside an event loop (it reads files)
import prometheus_client  # noqa: F401 - the same
from hypercorn.trio import run as _hypercorn_trio  # noqa: F401 - the same

import valis_actors as va
from valis_actors.server import ServerHandle, ServerSettings, create_app, run_server
from valis_actors.server._service import Service
from valis_actors.testing import ScriptedProvider

PERSONAS = str(Path(__file__).resolve().parent.parent / "personas")


def make_config(*providers: dict[str, Any], **overrides: Any) -> va.Config:
    data: dict[str, Any] = {
        "providers": list(providers) or [{"name": "scripted", "type": "scripted"}],
        "personas_dir": PERSONAS,
        "memory": {"backend": "memory"},
        "retry_schedule": [],
        "response_deadline": 10,
        "provider_timeout": 5,
    }
    data.update(overrides)
    return va.Config.from_dict(data)


@attrs.define
class Served:
    """A running server in a test."""

    handle: ServerHandle
    events: list[va.RuntimeEvent]
    http: httpx.AsyncClient
    clients: list[Any] = attrs.field(factory=list)

    def openai(self, api_key: str = "unused", **options: Any) -> openai.AsyncOpenAI:
        """An async openai SDK client on this server, closed when the server stops."""
        client = openai.AsyncOpenAI(base_url=self.base_url, api_key=api_key, **options)
        self.clients.append(client)
        return client

    def anthropic(self, api_key: str = "unused", **options: Any) -> anthropic.AsyncAnthropic:
        """An async anthropic SDK client on this server, closed when the server stops."""
        client = anthropic.AsyncAnthropic(base_url=self.url, api_key=api_key, **options)
        self.clients.append(client)
        return client

    @property
    def url(self) -> str:
        return self.handle.url

    @property
    def base_url(self) -> str:
        return self.handle.url + "/v1"

    @property
    def service(self) -> Service:
        service = self.handle.app.state.valis
        assert isinstance(service, Service)
        return service

    def provider(self, name: str = "scripted") -> Any:
        return self.service.runtime.provider(name)

    def scripted(self, name: str = "scripted") -> ScriptedProvider:
        provider = self.provider(name)
        assert isinstance(provider, ScriptedProvider)
        return provider

    def accepted(self, session_id: str) -> list[str]:
        """The messages of a session, in the order the runtime accepted them."""
        return [
            e.data["message"] for e in self.events
            if e.kind == va.EventKind.MESSAGE_ACCEPTED and e.session_id == session_id
        ]


@asynccontextmanager
async def serve(
    config: va.Config | None = None,
    settings: ServerSettings | None = None,
    *,
    hook: Callable[[va.RuntimeEvent], None] | None = None,
    **app_options: Any,
) -> AsyncIterator[Served]:
    events: list[va.RuntimeEvent] = []

    def record(event: va.RuntimeEvent) -> None:
        events.append(event)
        if hook is not None:
            hook(event)

    app = create_app(config or make_config(), settings=settings or ServerSettings(), event_hook=record,
                     **app_options)
    failure: BaseException | None = None
    async with anyio.create_task_group() as tg:
        handle: ServerHandle = await tg.start(lambda task_status: run_server(
            app, port=0, handle_signals=False, task_status=task_status))
        async with httpx.AsyncClient(base_url=handle.url, timeout=10) as http:
            # Hypercorn accepts once the lifespan (the runtime) is up: one request waits for it.
            assert (await http.get("/healthz")).status_code == 200
            served = Served(handle, events, http)
            try:
                yield served
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after a clean stop
                # Raised through the task group it would cancel Hypercorn mid-run, whose
                # asyncio worker then reports errors of its own that hide this one.
                failure = exc
                handle.drain()
            finally:
                for client in served.clients:
                    await client.close()  # in this backend: a pool closed later would use the wrong one
                handle.drain()  # run_server returns once drained; the task group waits for it
    if failure is not None:
        raise failure

def chat_body(message: str = "hello", model: str = "jane", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": message}], **extra}
