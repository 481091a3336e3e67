"""/metrics after traffic, and an OpenTelemetry span per attempt, with and without the server."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

import valis_actors as va
from valis_actors.observability import OpenTelemetryTracing, PrometheusMetrics, combine_hooks

from .server_support import chat_body, make_config, serve

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]

SECRET_TEXT = "my secret message text"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def failover_config() -> va.Config:
    return make_config(
        {"name": "primary", "type": "scripted", "model": "m-primary", "default": {"kind": "permanent"}},
        {"name": "secondary", "type": "scripted", "model": "m-secondary"},
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_metrics_after_traffic_show_attempts_fallbacks_and_requests() -> None:
    async with serve(failover_config()) as srv:
        headers = {"X-Session-Id": "session-secret-id"}
        assert (await srv.http.post("/v1/chat/completions", json=chat_body(SECRET_TEXT), headers=headers)).is_success
        stream = await srv.http.post("/v1/chat/completions", json=chat_body("again", stream=True), headers=headers)
        assert stream.is_success
        await srv.http.post("/v1/chat/completions", json=chat_body(model="nobody"))
        text = (await srv.http.get("/metrics")).text
    got = samples(text)
    attempts = "valis_provider_attempts_total"
    assert got[(attempts, (("model", "m-primary"), ("outcome", "permanent"), ("provider", "primary")))] == 2
    assert got[(attempts, (("model", "m-secondary"), ("outcome", "success"), ("provider", "secondary")))] == 2
    assert got[("valis_fallbacks_total", (("from", "primary"), ("to", "secondary")))] == 2
    assert got[("valis_messages_total", (("outcome", "answered"),))] == 2
    assert got[("valis_http_requests_total", (("route", "chat.completions"), ("status", "200")))] == 2
    assert got[("valis_http_requests_total", (("route", "chat.completions"), ("status", "404")))] == 1
    assert got[("valis_time_to_first_token_seconds_count", (("route", "chat.completions"),))] == 1
    assert got[("valis_live_sessions", ())] >= 1
    assert got[("valis_provider_state", (("provider", "primary"),))] in (0, 1, 2)
    assert "session-secret-id" not in text and SECRET_TEXT not in text


async def test_a_span_per_attempt_under_the_message_span() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with serve(failover_config(), tracer_provider=provider) as srv:
        response = await srv.http.post("/v1/chat/completions", json=chat_body(SECRET_TEXT),
                                       headers={"X-Session-Id": "traced", "authorization": "Bearer sk-abc"})
        assert response.is_success
    spans = exporter.get_finished_spans()
    (message,) = [s for s in spans if s.name == "invoke_agent"]
    attempts = [s for s in spans if s.name.startswith("chat ")]
    assert [s.name for s in attempts] == ["chat m-primary", "chat m-secondary"]
    for span in attempts:
        assert span.parent is not None and span.parent.span_id == message.context.span_id
        assert span.attributes is not None
        assert span.attributes["gen_ai.operation.name"] == "chat"
        assert span.attributes["gen_ai.provider.name"] == "scripted"
        assert span.attributes["gen_ai.conversation.id"] == "traced"
    assert attempts[0].attributes is not None and attempts[0].attributes["error.type"] == "permanent"
    assert attempts[1].attributes is not None and "error.type" not in attempts[1].attributes
    for span in spans:
        values = " ".join(str(v) for v in (span.attributes or {}).values())
        assert SECRET_TEXT not in values and "sk-abc" not in values


async def test_hooks_work_for_library_users_without_the_server() -> None:
    config = failover_config()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    metrics = PrometheusMetrics(config)
    seen: list[str] = []

    def broken(event: va.RuntimeEvent) -> None:
        raise RuntimeError("an observer's bug")

    hook = combine_hooks(metrics, OpenTelemetryTracing(config, tracer_provider=tracer_provider), broken,
                         lambda e: seen.append(e.kind))
    async with va.open_runtime(config, event_hook=hook) as runtime:
        metrics.bind(runtime)
        reply = await runtime.ask("lib", "jane", "hi")
        text = metrics.exposition().decode()
    assert reply.provider == "secondary"
    assert va.EventKind.REPLY_DELIVERED in seen  # a hook that raises does not stop the others
    assert 'valis_fallbacks_total{from="primary",to="secondary"} 1.0' in text
    assert len([s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]) == 2


def test_metrics_use_their_own_registry_by_default() -> None:
    first, second = PrometheusMetrics(), PrometheusMetrics()  # no "duplicated timeseries" error
    assert first.registry is not second.registry


