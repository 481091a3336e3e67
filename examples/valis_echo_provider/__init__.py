"""A worked example of a provider, written as a third party would (see docs/providers.md).

``echo_llm`` talks to a tiny made-up HTTP API: ``POST {base_url}/complete`` with
``{"system": ..., "messages": [...]}`` answers ``{"text": ..., "model": ...,
"tokens": {"in": N, "out": M}}``. It shows the whole boilerplate: options from
config.json, the key from the environment, one long-lived HTTP client per runtime,
mapping every third-party error to our error types at the boundary, streaming,
and secret redaction. It follows docs/providers.md's rules: httpx is imported in
``aopen`` (config loading imports this module), and the client neither retries nor
times out (the runtime owns retries, ``provider_timeout`` and deadlines).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import attrs

import valis_actors as va
from valis_actors import provider_options

if TYPE_CHECKING:  # annotations only: the module itself is imported in aopen
    import httpx


@attrs.frozen
class EchoOptions:
    """The entry's type-specific options; unknown keys are refused at config load."""

    base_url: str = "http://127.0.0.1:8080"
    model: str = "echo-1"
    api_key_env: str = "ECHO_API_KEY"


@va.register_provider("echo_llm", aliases=("echo_llm_legacy",))
class EchoLLM(va.BaseProvider):
    """A provider for the made-up echo API."""

    options_type = EchoOptions
    suspends = True  # every answer is an HTTP response: no checkpoint needed after it

    def __init__(self, settings: va.ProviderSettings) -> None:
        self.settings = settings  # no need to call super().__init__
        self.options = provider_options(settings, EchoOptions)
        self.key = os.environ.get(self.options.api_key_env)
        self.client: httpx.AsyncClient | None = None
        self.httpx: Any = None

    async def aopen(self) -> None:
        # Imported here, not at the top: loading a config imports this module, and that
        # must stay fast. (A slow import would go in anyio.to_thread.run_sync.)
        import httpx

        self.httpx = httpx
        # One client for the runtime's lifetime: connections are reused across requests.
        # timeout=None: the runtime bounds and cancels every attempt (provider_timeout,
        # the response deadline); httpx retries nothing by default, and neither do we.
        self.client = httpx.AsyncClient(base_url=self.options.base_url, timeout=None)

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    def unavailable_reason(self) -> str | None:
        # Cheap and local: never touch the network here, it runs on the request path.
        return None if self.key else f"{self.options.api_key_env} not set"

    def redact(self, text: str) -> str:
        return text.replace(self.key, "<redacted>") if self.key else text

    def _payload(self, request: va.ProviderRequest) -> dict[str, object]:
        return {"system": request.system_prompt, "messages": request.messages(), "model": self.options.model}

    async def get_response(self, request: va.ProviderRequest) -> va.ProviderResponse:
        assert self.client is not None
        try:
            response = await self.client.post(
                "/complete", json=self._payload(request), headers={"authorization": f"Bearer {self.key}"}
            )
        except self.httpx.HTTPError as exc:  # connection refused, reset...
            raise va.TransientProviderError(f"echo_llm unreachable: {exc}") from exc
        _raise_for_status(response)
        data = response.json()
        tokens = data.get("tokens", {})
        return va.ProviderResponse(
            text=data["text"], model=data.get("model"), usage=va.Usage(tokens.get("in", 0), tokens.get("out", 0))
        )

    def stream_response(self, request: va.ProviderRequest) -> AsyncIterator[str | va.ProviderResponse]:
        return self._stream(request)

    async def _stream(self, request: va.ProviderRequest) -> AsyncIterator[str | va.ProviderResponse]:
        # The made-up API cannot stream: answer whole, then say the answer is complete.
        response = await self.get_response(request)
        yield response.text
        yield response


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    if status == 429:
        retry_after = response.headers.get("retry-after")
        raise va.RateLimitedError("echo_llm rate limited", retry_after=float(retry_after) if retry_after else None)
    if status in (401, 403):
        raise va.PermanentProviderError("echo_llm refused the key: check ECHO_API_KEY")
    if status >= 500 or status in (408, 409):
        raise va.TransientProviderError(f"echo_llm answered {status}")
    raise va.PermanentProviderError(f"echo_llm answered {status}: {response.text[:200]}")
