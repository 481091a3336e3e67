"""A wire-faithful fake LLM HTTP server with per-request fault scripts.

It speaks the Anthropic Messages API (``POST /v1/messages``) and the OpenAI Chat
Completions API (``POST /v1/chat/completions``), JSON and SSE, on 127.0.0.1, inside any
anyio event loop (asyncio or trio), so tests and benchmarks can drive the official SDKs::

    from valis_actors.testing.fakeserver import Fault, open_fake_llm_server

    async with open_fake_llm_server(text="Hi there.", chunks=3) as server:
        client = anthropic.AsyncAnthropic(api_key="k", base_url=server.anthropic_base_url)
        server.script("anthropic", Fault.rate_limited(retry_after=0.2), Fault.ok())
        ...
        assert server.requests[0].fault == Fault.rate_limited(retry_after=0.2)

Each API has a FIFO queue of :class:`Fault` steps; a request pops the next step, or gets
the default step (``Fault.ok()`` unless :meth:`FakeLLMServer.set_default` says otherwise).
Requests whose key does not match ``api_keys`` get a 401 echoing the key and pop nothing.

Run it as a process for benchmarks (prints ``listening on http://127.0.0.1:PORT``)::

    python -m valis_actors.testing.fakeserver --port 0 [--backend asyncio|trio]
        [--default ok|STATUS] [--delay SECONDS] [--text TEXT] [--chunks N]

Modules: ``_faults`` (the steps), ``_server`` (state, records, dispatch), ``_wire`` and
``_errors`` (the API formats), ``_http`` (HTTP/1.1 on anyio streams), ``_respond`` (the
behaviours), ``_main`` (``open_fake_llm_server`` and the command line).
"""

from ._faults import Api as Api
from ._faults import Fault as Fault
from ._faults import FaultKind as FaultKind
from ._main import main as main
from ._main import open_fake_llm_server as open_fake_llm_server
from ._server import FakeLLMServer as FakeLLMServer
from ._server import FakeServerStatistics as FakeServerStatistics
from ._server import RecordedRequest as RecordedRequest

__all__ = [
    "Api",
    "FakeLLMServer",
    "FakeServerStatistics",
    "Fault",
    "FaultKind",
    "RecordedRequest",
    "main",
    "open_fake_llm_server",
]
