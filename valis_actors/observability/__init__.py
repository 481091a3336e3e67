"""Observability for library users and ``valis serve``: event hooks for metrics and traces.

    from valis_actors.observability import OpenTelemetryTracing, PrometheusMetrics, combine_hooks

    metrics = PrometheusMetrics(config)
    hook = combine_hooks(metrics, OpenTelemetryTracing(config))
    async with va.open_runtime(config, event_hook=hook) as runtime:
        metrics.bind(runtime)

``PrometheusMetrics`` needs ``prometheus_client`` (extra ``valis_actors[server]``) and
``OpenTelemetryTracing`` needs ``opentelemetry-api`` (extra ``valis_actors[otel]``);
each imports its library only when created.
"""

from ._hooks import combine_hooks as combine_hooks
from ._metrics import PrometheusMetrics as PrometheusMetrics
from ._tracing import OpenTelemetryTracing as OpenTelemetryTracing

__all__ = ["OpenTelemetryTracing", "PrometheusMetrics", "combine_hooks"]
