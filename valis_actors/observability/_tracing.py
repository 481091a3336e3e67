"""OpenTelemetry spans from runtime events (``opentelemetry-api`` only, imported when used).

Spans follow the GenAI semantic conventions (status Development): one
``invoke_agent`` span per message and one ``chat {model}`` span per provider
attempt, its child. Attributes never hold a message's text or a key.

Spans are started and ended explicitly (no ``start_as_current_span`` across an
``await``): events of one message come from different tasks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import valis_actors as va

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider

__all__ = ["OpenTelemetryTracing"]

_LOCAL_TYPES = {"persona_fallback", "hardcoded_fallback"}


class OpenTelemetryTracing:
    """An event hook that turns a runtime's events into OpenTelemetry spans.

    Args:
        config: Names each provider's type and configured model (``gen_ai.provider.name``,
            ``gen_ai.request.model``).
        tracer_provider: Where spans go; the global provider by default.
        conversation_id: Put the session id in ``gen_ai.conversation.id`` (default True;
            turn off if session ids are personal data in your deployment).
    """

    def __init__(
        self,
        config: va.Config | None = None,
        *,
        tracer_provider: TracerProvider | None = None,
        conversation_id: bool = True,
    ) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._tracer = trace.get_tracer("valis_actors", va.__version__, tracer_provider=tracer_provider)
        self._providers = {
            p.name: (str(p.type), str(p.option("model") or p.type)) for p in (config or va.Config()).providers
        }
        self._conversation_id = conversation_id
        self._messages: dict[tuple[str | None, int | None], Span] = {}
        self._attempts: dict[tuple[str | None, int | None, str | None], Span] = {}

    def _base(self, event: va.RuntimeEvent) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        if self._conversation_id and event.session_id is not None:
            attributes["gen_ai.conversation.id"] = event.session_id
        return attributes

    def __call__(self, event: va.RuntimeEvent) -> None:
        kind = event.kind
        if kind == va.EventKind.MESSAGE_ACCEPTED:
            self._message_accepted(event)
        elif kind == va.EventKind.ATTEMPT_STARTED:
            self._attempt_started(event)
        elif kind == va.EventKind.ATTEMPT_FINISHED:
            self._attempt_finished(event)
        elif kind in (va.EventKind.REPLY_DELIVERED, va.EventKind.MESSAGE_FAILED, va.EventKind.MESSAGE_DROPPED):
            self._message_ended(event)

    def _message_accepted(self, event: va.RuntimeEvent) -> None:
        attributes = {"gen_ai.operation.name": "invoke_agent", **self._base(event)}
        # Parented on whatever span is current in the caller (an HTTP request's span).
        self._messages[(event.session_id, event.seq)] = self._tracer.start_span("invoke_agent", attributes=attributes)

    def _attempt_started(self, event: va.RuntimeEvent) -> None:
        trace = self._trace
        parent = self._messages.get((event.session_id, event.seq))
        context = trace.set_span_in_context(parent) if parent is not None else None
        provider_type, model = self._providers.get(event.provider or "", (event.provider or "", ""))
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider_type,
            "gen_ai.request.model": model,
            "valis.provider": event.provider or "",
            **self._base(event),
        }
        kind = trace.SpanKind.INTERNAL if provider_type in _LOCAL_TYPES else trace.SpanKind.CLIENT
        span = self._tracer.start_span(f"chat {model}", context=context, attributes=attributes, kind=kind)
        self._attempts[(event.session_id, event.seq, event.provider)] = span

    def _attempt_finished(self, event: va.RuntimeEvent) -> None:
        span = self._attempts.pop((event.session_id, event.seq, event.provider), None)
        if span is None:
            return
        outcome = str(event.data.get("outcome", ""))
        span.set_attribute("valis.outcome", outcome)
        if outcome != "success":
            span.set_attribute("error.type", outcome)
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
        span.end()

    def _message_ended(self, event: va.RuntimeEvent) -> None:
        span = self._messages.pop((event.session_id, event.seq), None)
        if span is None:
            return
        if event.kind == va.EventKind.REPLY_DELIVERED:
            span.set_attribute("valis.provider", event.provider or "")
            span.set_attribute("valis.fallback_used", bool(event.data.get("fallback_used")))
        else:
            span.set_attribute("error.type", "failed" if event.kind == va.EventKind.MESSAGE_FAILED else "dropped")
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
        span.end()
