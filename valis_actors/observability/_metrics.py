"""Prometheus metrics from runtime events (``prometheus_client``, imported when used).

No label ever holds a session id, a message or a key: labels are providers,
models, outcomes and routes, all bounded by the config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import valis_actors as va

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["PrometheusMetrics"]

_STATE_VALUE = {"closed": 0, "half_open": 1, "open": 2}
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class PrometheusMetrics:
    """An event hook that keeps Prometheus metrics of a runtime.

    Example::

        metrics = PrometheusMetrics(config)
        async with va.open_runtime(config, event_hook=metrics) as runtime:
            metrics.bind(runtime)   # live sessions, mailbox depth, circuits at scrape time
            ...
        text = metrics.exposition()

    Args:
        config: Names each provider's configured model (the ``model`` label).
        registry: Where to register; a new ``CollectorRegistry`` by default (pass
            ``prometheus_client.REGISTRY`` to join the process-wide one).

    Metrics: ``valis_messages_total{outcome}``, ``valis_message_duration_seconds``,
    ``valis_provider_attempts_total{provider,model,outcome}``,
    ``valis_attempt_duration_seconds{provider,model}``, ``valis_fallbacks_total{from,to}``,
    ``valis_provider_state{provider}`` (0 closed, 1 half-open, 2 open),
    ``valis_live_sessions``, ``valis_mailbox_depth``, ``valis_attempts_in_flight``; and,
    fed by the server, ``valis_http_requests_total{route,status}``,
    ``valis_http_request_duration_seconds{route}``, ``valis_time_to_first_token_seconds{route}``.
    """

    def __init__(self, config: va.Config | None = None, *, registry: CollectorRegistry | None = None) -> None:
        import prometheus_client as prom

        self._prom = prom
        self.registry = registry if registry is not None else prom.CollectorRegistry()
        reg = self.registry
        self._models = {p.name: str(p.option("model") or p.type) for p in (config or va.Config()).providers}
        self.messages = prom.Counter("valis_messages", "Messages by how they ended", ["outcome"], registry=reg)
        self.message_duration = prom.Histogram(
            "valis_message_duration_seconds", "Accepted to answered", buckets=_LATENCY_BUCKETS, registry=reg
        )
        self.attempts = prom.Counter(
            "valis_provider_attempts", "Provider attempts", ["provider", "model", "outcome"], registry=reg
        )
        self.attempt_duration = prom.Histogram(
            "valis_attempt_duration_seconds", "Provider attempt duration", ["provider", "model"],
            buckets=_LATENCY_BUCKETS, registry=reg,
        )
        self.fallbacks = prom.Counter(
            "valis_fallbacks", "Answers from another provider than the first tried", ["from", "to"], registry=reg
        )
        self.provider_state = prom.Gauge(
            "valis_provider_state", "Circuit: 0 closed, 1 half-open, 2 open", ["provider"], registry=reg
        )
        self.http_requests = prom.Counter(
            "valis_http_requests", "HTTP requests by route and status", ["route", "status"], registry=reg
        )
        self.http_duration = prom.Histogram(
            "valis_http_request_duration_seconds", "HTTP request duration", ["route"],
            buckets=_LATENCY_BUCKETS, registry=reg,
        )
        self.first_token_seconds = prom.Histogram(
            "valis_time_to_first_token_seconds", "Request to first streamed chunk", ["route"],
            buckets=_LATENCY_BUCKETS, registry=reg,
        )
        self._live = prom.Gauge("valis_live_sessions", "Session actors alive", registry=reg)
        self._depth = prom.Gauge("valis_mailbox_depth", "Messages waiting in all mailboxes", registry=reg)
        self._in_flight = prom.Gauge("valis_attempts_in_flight", "Provider attempts running", registry=reg)
        self._accepted: dict[tuple[str | None, int | None], float] = {}
        self._first: dict[tuple[str | None, int | None], str] = {}
        self._started: dict[tuple[str | None, int | None, str | None], float] = {}

    def bind(self, runtime: va.Runtime) -> None:
        """Read sessions, mailboxes and circuits from ``runtime`` at every scrape."""
        self._live.set_function(lambda: runtime.statistics().live_sessions)
        self._depth.set_function(lambda: runtime.statistics().queued_messages)
        self._in_flight.set_function(lambda: runtime.statistics().attempts_in_flight)
        for name, breaker in runtime.statistics().breakers.items():
            self.provider_state.labels(name).set(_STATE_VALUE.get(_state_name(breaker), 0))

    def __call__(self, event: va.RuntimeEvent) -> None:
        kind = event.kind
        message = (event.session_id, event.seq)
        if kind == va.EventKind.ATTEMPT_STARTED:
            self._started[(event.session_id, event.seq, event.provider)] = event.time
            self._first.setdefault(message, event.provider or "")
        elif kind == va.EventKind.ATTEMPT_FINISHED:
            provider = event.provider or ""
            model = self._models.get(provider, provider)
            self.attempts.labels(provider, model, str(event.data.get("outcome", "unknown"))).inc()
            began = self._started.pop((event.session_id, event.seq, event.provider), None)
            if began is not None:
                self.attempt_duration.labels(provider, model).observe(max(0.0, event.time - began))
        elif kind == va.EventKind.MESSAGE_ACCEPTED:
            self._accepted[message] = event.time
        elif kind == va.EventKind.REPLY_DELIVERED:
            self.messages.labels("answered").inc()
            began = self._accepted.pop(message, None)
            if began is not None:
                self.message_duration.observe(max(0.0, event.time - began))
            first = self._first.pop(message, None)
            if event.provider and first is not None and first != event.provider:
                self.fallbacks.labels(first, event.provider).inc()
        elif kind in (va.EventKind.MESSAGE_FAILED, va.EventKind.MESSAGE_DROPPED):
            self.messages.labels("failed" if kind == va.EventKind.MESSAGE_FAILED else "dropped").inc()
            self._accepted.pop(message, None)
            self._first.pop(message, None)
        elif kind == va.EventKind.BREAKER_TRANSITION and event.provider:
            self.provider_state.labels(event.provider).set(_STATE_VALUE.get(str(event.data.get("to")), 0))

    def http_request(self, route: str, status: int, began: float) -> None:
        """Count one HTTP request (``began``: ``anyio.current_time()`` at its start)."""
        import anyio

        self.http_requests.labels(route, str(status)).inc()
        self.http_duration.labels(route).observe(max(0.0, anyio.current_time() - began))

    def first_token(self, route: str, began: float) -> None:
        """Record the time from a request's start to its first streamed chunk."""
        import anyio

        self.first_token_seconds.labels(route).observe(max(0.0, anyio.current_time() - began))

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format."""
        data: bytes = self._prom.generate_latest(self.registry)
        return data


def _state_name(breaker: Any) -> str:
    state = getattr(breaker, "state", None)
    return str(getattr(state, "value", state))
