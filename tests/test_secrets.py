"""No key leaves the runtime: not in a log line, an attempt, a reply, a repr or statistics.

The key is echoed through every error form a server can send (401 echoing it, error
bodies, the model it names, resets, timeouts, cut streams), through a successful
answer's ``model``, and through a provider bug's exception in every shape Python allows
(message, an argument's repr, notes, ExceptionGroup members, causes). Then the log
(caplog, DEBUG), the replies and stream attributes, their reprs, the CLI footer and
``statistics()`` are searched for the key and its fragments. Real time: real sockets.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import valis_actors as va
from valis_actors.cli import main
from valis_actors.cli._output import describe, reply_json
from valis_actors.providers._common import Redactor
from valis_actors.testing.fakeserver import FakeLLMServer, Fault, open_fake_llm_server

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]

KEY = "sk-live-Hx4Tq9Lm2Vb7Rc1Zp8Wn3Ky6Jd5Fs0"
FRAGMENTS = [KEY, KEY[3:], KEY[:16], KEY[8:24], KEY[-14:]]


def assert_no_key(*texts: object) -> None:
    for text in texts:
        shown = text if isinstance(text, str) else repr(text)
        for fragment in FRAGMENTS:
            assert fragment not in shown, f"{fragment!r} leaked in {shown[:300]!r}"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeLLMServer]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    async with open_fake_llm_server(text="A fine answer.", chunks=3) as srv:
        yield srv


def config(server: FakeLLMServer, api: str) -> va.Config:
    # The model is the key: the fake server echoes the requested model in answers and
    # in the error bodies that name it, as a misbehaving server would echo the key.
    base_url = server.openai_base_url if api == "openai" else server.anthropic_base_url
    return va.Config.from_dict({
        "providers": [{"name": api, "type": api, "base_url": base_url, "model": KEY, "timeout": 0.5}],
        "retry_schedule": [],
        "response_deadline": 5,
        "memory": {"backend": "memory"},
    })


ERROR_FORMS = [
    Fault.unauthorized(),
    Fault.status(401, message=f"Incorrect API key provided: {KEY}"),
    Fault.status(401, message=f"Incorrect API key provided: {KEY[:6]}****{KEY[-4:]}"),
    Fault.status(500, message=f"internal error for key {KEY}"),
    Fault.status(429, message=f"slow down {KEY}", retry_after=0.01),
    Fault.status(404, message=f"The model {KEY} does not exist"),
    Fault.status(400, message=f"bad request {KEY}", error_type=f"type_{KEY}", code=KEY),
    Fault.content_policy(),
    Fault.context_length_exceeded(),
    Fault.reset(),
    Fault.malformed(),
    Fault.no_response(),
]


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_no_key_in_successful_fields(server: FakeLLMServer, api: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="valis_actors")
    async with va.open_runtime(config(server, api)) as runtime:
        reply = await runtime.ask("s", "jane", "hello")
        async with runtime.stream("s", "jane", "hello again") as stream:
            text = "".join([chunk async for chunk in stream])
            streamed = (stream.provider, stream.model, stream.usage, stream.attempts, repr(stream))
        stats = runtime.statistics()
    assert (reply.provider, reply.text, text) == (api, "A fine answer.", "A fine answer.")
    assert reply.model is not None and "[redacted]" in reply.model
    assert_no_key(reply, reply.attempts, describe(reply), json.dumps(reply_json(reply)), streamed, stats, caplog.text)


@pytest.mark.parametrize("fault", ERROR_FORMS, ids=lambda f: f"{f.kind.value}-{f.status_code}")
@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_no_key_in_any_error_form(
    server: FakeLLMServer, api: str, fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="valis_actors")
    server.set_default(fault)
    async with va.open_runtime(config(server, api)) as runtime:
        reply = await runtime.ask("s", "jane", "hello")
        try:
            async with runtime.stream("s2", "jane", "hello") as stream:
                text = "".join([chunk async for chunk in stream])
                streamed: tuple[object, ...] = (stream.provider, stream.model, stream.attempts, repr(stream))
        except va.IncompleteAnswerError as exc:  # a stream cut after its first chunk
            text, streamed = "cut", (str(exc), repr(exc), exc.attempts)
        stats = runtime.statistics()
    assert reply.fallback_used and text
    assert_no_key(reply, reply.attempts, describe(reply), json.dumps(reply_json(reply)), streamed, stats, caplog.text)


class _Holder:
    def __repr__(self) -> str:
        return f"Holder(key={KEY!r})"


def _bug(form: str) -> BaseException:
    if form == "message":
        return RuntimeError(f"oops {KEY}")
    if form == "repr":
        return ValueError(_Holder())
    if form == "note":
        exc = RuntimeError("oops")
        exc.add_note(f"while using {KEY}")
        return exc
    if form == "group":
        return ExceptionGroup("two failed", [ValueError(KEY), KeyError(_Holder())])
    if form == "cause":
        exc = RuntimeError("wrapped")
        exc.__cause__ = ConnectionError(f"to https://api.example/?key={KEY}")
        return exc
    if form == "str raises":

        class Broken(Exception):
            def __str__(self) -> str:
                raise RuntimeError(KEY)

        return Broken(KEY)
    raise AssertionError(form)


BUG_FORMS = ["message", "repr", "note", "group", "cause", "str raises"]


@va.register_provider("leaky_test")
class Leaky(va.BaseProvider):
    """A provider with a correct redact() and bugs that put the key in their exceptions."""

    form = "message"

    def redact(self, text: str) -> str:
        return Redactor([KEY])(text)

    async def get_response(self, request: va.ProviderRequest) -> va.ProviderResponse:
        raise _bug(self.form)


@pytest.mark.parametrize("form", BUG_FORMS)
async def test_no_key_in_the_log_of_a_provider_bug(form: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="valis_actors")
    data = {"providers": [{"name": "leaky", "type": "leaky_test"}], "memory": {"backend": "memory"}}
    async with va.open_runtime(va.Config.from_dict(data)) as runtime:
        leaky = runtime.provider("leaky")
        assert isinstance(leaky, Leaky)
        leaky.form = form
        reply = await runtime.ask("s", "jane", "hello")
        stats = runtime.statistics()
    assert reply.fallback_used and reply.attempts[0].outcome is va.AttemptOutcome.ERROR
    assert "a bug in the provider" in caplog.text
    assert_no_key(reply, reply.attempts, describe(reply), stats, caplog.text)
    for record in caplog.records:
        assert record.exc_info is None  # a raw traceback would be formatted unredacted


ENV = {"API_TOKEN": KEY, "db_password": "hunter2-hunter2", "MY_SECRET": "s3cr3t-value", "AUTH_KEY": "k3y-value-99"}


def test_config_repr_and_check_hide_secret_env_values(tmp_path: Path) -> None:
    entry = {"name": "dc", "type": "desktop_commander", "command": ["cat"], "env": {**ENV, "LANG": "C.UTF-8"}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"providers": [entry]}))
    config = va.load_config(path)
    out = io.StringIO()
    assert main(["config", "check", str(path)], out=out) == 0
    from valis_actors.providers import provider_class

    provider = provider_class("desktop_commander")(config.providers[0])
    shown = [repr(config), repr(config.providers[0]), str(config), out.getvalue(), repr(provider.options)]
    for text in shown:
        for value in ENV.values():
            assert value not in text
        assert "C.UTF-8" in text  # other variables stay visible
        assert "API_TOKEN" in text  # and so do the names
    # The provider itself still gets the real values.
    assert provider.options.env["API_TOKEN"] == KEY
    assert config.providers[0].options["env"]["API_TOKEN"] == KEY


def test_cli_footer_and_json_carry_no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    path = tmp_path / "config.json"
    # Nothing listens on the closed port: the refused connection's error is in the footer.
    entry = {"name": "o", "type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": KEY}
    path.write_text(json.dumps({"providers": [entry], "retry_schedule": [], "memory": {"enabled": False}}))
    for extra in ([], ["--json"]):
        out = io.StringIO()
        assert main(["ask", "jane", "hi", "--config", str(path), *extra], out=out) == 0
        assert_no_key(out.getvalue())


def test_reported_model_names_are_redacted_every_time_and_kept_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # reported_model keeps the redacted form per name (redaction runs a fuzzy match per
    # answer otherwise); a server naming a new model per answer must not grow it unbounded.
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    settings = va.Config.from_dict({"providers": [{"name": "openai", "type": "openai"}]}).providers[0]
    from valis_actors.providers._http import _MAX_MODEL_NAMES
    from valis_actors.providers._openai import OpenAIProvider

    provider = OpenAIProvider(settings)
    names = [f"model-{i}-{KEY}" for i in range(_MAX_MODEL_NAMES + 10)]
    for _ in range(2):
        shown = [provider.reported_model(name) for name in names]
        assert_no_key(*shown)
        assert all(s is not None and s.startswith("model-") and "[redacted]" in s for s in shown)
    assert len(provider._models) == _MAX_MODEL_NAMES
    assert provider.reported_model("gpt-test") == "gpt-test"
    assert provider.reported_model("") is None and provider.reported_model(None) is None
