"""``create_app``: the Starlette app, with the runtime opened in its lifespan.

Routes: ``GET /v1/models``, ``GET /v1/models/{id}``, ``POST /v1/chat/completions``, ``POST /v1/messages``,
``GET /healthz``, ``GET /readyz``, ``GET /metrics``, and the web chat page
(``GET /``, ``GET /static/{name}``). Unknown paths and methods get
an OpenAI-style error body, and so does any bug (500, no traceback in the response).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import valis_actors as va
from valis_actors.observability import PrometheusMetrics, combine_hooks

from ._anthropic import messages
from ._cluster import cluster_metrics, cluster_readiness, open_server_runtime
from ._errors import ApiError, openai_body
from ._flights import FlightTable
from ._openai import chat_completions, list_models, retrieve_model
from ._replies import error_response
from ._service import Service
from ._settings import ServerSettings, load_server_config
from ._webchat import index, static_file

__all__ = ["create_app"]

logger = logging.getLogger("valis_actors.server")

EXPOSED_HEADERS = ["x-valis-provider", "x-valis-model", "x-valis-session-id", "x-valis-fallback", "retry-after"]


Hook = Callable[[va.RuntimeEvent], None]


def _tracing_hook(config: va.Config, tracer_provider: Any) -> Hook | None:
    try:
        from valis_actors.observability import OpenTelemetryTracing

        return OpenTelemetryTracing(config, tracer_provider=tracer_provider)
    except ImportError:  # the otel extra is not installed: no spans
        return None


def create_app(
    config: va.Config | None = None,
    *,
    settings: ServerSettings | None = None,
    event_hook: Hook | None = None,
    tracing: bool = True,
    tracer_provider: Any = None,
) -> Starlette:
    """The VALIS HTTP server as an ASGI app (serve it with Hypercorn, or mount it).

    Args:
        config: The runtime's config; None reads config.json like ``valis serve``
            (``$VALIS_CONFIG`` or ./config.json, with its ``server`` section).
        settings: The server's settings; None: from config.json's ``server`` section (when
            ``config`` is None too) or the defaults, plus ``$VALIS_SERVER_API_KEYS``.
        event_hook: Also called with every runtime event (after metrics and tracing).
        tracing: Emit OpenTelemetry spans when ``opentelemetry-api`` is installed.
        tracer_provider: An OpenTelemetry ``TracerProvider``; the global one by default.

    The runtime opens in the app's lifespan: a server that runs lifespan (Hypercorn,
    uvicorn) is needed, or, when mounting, enter ``app.router.lifespan_context(app)``
    from the parent app's lifespan.
    """
    if config is None:
        config, file_settings = load_server_config()
        settings = settings if settings is not None else file_settings
    if settings is None:
        settings = ServerSettings.from_dict({})
    metrics = PrometheusMetrics(config)
    hook = combine_hooks(metrics, _tracing_hook(config, tracer_provider) if tracing else None, event_hook)
    run_config = config
    run_settings = settings

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_server_runtime(run_config, hook) as (runtime, cluster):
            metrics.bind(runtime)
            async with anyio.create_task_group() as flights:
                service = Service(
                    runtime, run_settings, FlightTable(flights, run_settings.dedupe_window), cluster=cluster
                )
                app.state.valis = service
                try:
                    yield
                finally:
                    service.draining = True  # flights already running finish before the runtime closes

    middleware = []
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["*"],  # the SDKs send x-stainless-* headers
                expose_headers=EXPOSED_HEADERS,
                max_age=600,
            )
        )
    app = Starlette(
        routes=[
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", retrieve_model, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/", index, methods=["GET"]),
            Route("/static/{name}", static_file, methods=["GET"]),
        ],
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
        lifespan=lifespan,
    )
    app.state.valis = None
    app.state.valis_metrics = metrics
    app.state.valis_settings = settings
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = {404: f"no such endpoint: {request.url.path}; the API is under /v1",
               405: f"{request.method} is not allowed on {request.url.path}"}.get(status, "bad request")
    kind = "not_found_error" if status == 404 else "invalid_request_error"
    return error_response(ApiError(status, message, type=kind, code=str(status)), openai_body)


async def _internal_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
    return error_response(
        ApiError(500, "internal error; see the server log", type="server_error", code="internal_error"),
        openai_body,
    )


async def healthz(request: Request) -> Response:
    """The process is up."""
    return Response(b'{"status":"ok"}', media_type="application/json")


async def readyz(request: Request) -> Response:
    """The runtime is open and not draining; the body lists every circuit."""
    service = request.app.state.valis
    if not isinstance(service, Service):
        return Response(b'{"status":"starting"}', status_code=503, media_type="application/json")
    stats = service.runtime.statistics()
    ready = not (service.draining or stats.closed)
    body: dict[str, Any] = {
        "status": "ready" if ready else "draining",
        "circuits": {name: str(b.state) for name, b in stats.breakers.items()},
        "live_sessions": stats.live_sessions,
        "attempts_in_flight": stats.attempts_in_flight,
    }
    if service.cluster is not None:
        # Without Redis no session can be taken on (fail closed): not ready.
        redis_up, body["cluster"] = await cluster_readiness(service.cluster)
        if ready and not redis_up:
            ready, body["status"] = False, "redis_unavailable"
    headers = {} if ready else {"retry-after": str(service.settings.retry_after)}
    return Response(json.dumps(body), status_code=200 if ready else 503, headers=headers,
                    media_type="application/json")


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format."""
    metrics: PrometheusMetrics = request.app.state.valis_metrics
    text = metrics.exposition()
    service = request.app.state.valis
    if isinstance(service, Service) and service.cluster is not None:
        text += cluster_metrics(service.cluster).encode()
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")
