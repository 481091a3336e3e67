"""``ScriptedProvider``: a provider whose every call follows a script, for tests.

Register-free to use: config type ``"scripted"``. Each call pops the next step
of its script (or follows a seeded random fault plan, or the default step) and
records what it received, when, and how many calls were in flight.

Steps go into a config as they are: ``{"type": "scripted", "script": [Step.transient()]}``
is structured like the JSON spelling ``{"kind": "transient"}``, and a ``ScriptedOptions``
unstructures to entry options and back without loss (see ``override_provider``).
"""

from __future__ import annotations

import collections.abc
import inspect
import random
import typing
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn

from .._config import get_converter
from .._errors import (
    ContentPolicyError,
    PermanentProviderError,
    PrefillRejectedError,
    ProviderUnavailableError,
    RateLimitedError,
    TransientProviderError,
)
from .._messages import ProviderRequest, ProviderResponse, Turn, Usage
from .._validation import FieldValueError, StrictTypeError, one_of
from ..providers import BaseProvider, provider_options, register_provider

__all__ = ["Call", "ReplyFunction", "ScriptedOptions", "ScriptedProvider", "Step"]

#: A function that computes an answer from the request, sync or async (``Step.compute``).
ReplyFunction = Callable[[ProviderRequest], str | Awaitable[str]]

STEP_KINDS = (
    "answer",
    "transient",
    "rate_limited",
    "permanent",
    "content_policy",
    "hang",
    "unavailable",
    "crash",
    "cut",
    "stall",
    "reject_prefill",
)


def _check_reply(instance: Step, attribute: attrs.Attribute[Any], value: ReplyFunction | None) -> None:
    if value is None:
        return
    if not callable(value):
        raise FieldValueError(attribute.name, f"must be a function of the request (got {value!r})")
    if instance.text is not None:
        raise FieldValueError(attribute.name, "and text are both set; give the step one or the other")
    if instance.kind not in ("answer", "cut", "stall"):
        raise FieldValueError(attribute.name, f"is only for answer, cut and stall steps (kind is {instance.kind!r})")


@attrs.frozen
class Step:
    """What one call does. Build steps with the class methods.

    Attributes:
        kind: One of ``answer``, ``transient``, ``rate_limited``, ``permanent``,
            ``content_policy``, ``hang``, ``unavailable``, ``crash`` (raises a
            RuntimeError: a provider bug); for streams, ``cut`` (fails after
            ``after_chunks`` chunks) and ``stall`` (goes silent after them). Not
            streaming, ``cut`` fails like ``transient`` and ``stall`` hangs;
            ``reject_prefill`` refuses a request to continue a cut answer
            (``PrefillRejectedError``) and answers any other.
        delay: Seconds before the step acts (answers or fails).
        text: The answer (``answer``); default ``"<provider>: <message>"``.
        retry_after: The wait asked for (``rate_limited``).
        after_chunks: Chunks sent before a ``cut`` or ``stall``.
        chunk_delay: Seconds between streamed chunks.
        reply: A function that computes the answer from the ``ProviderRequest``
            (``Step.compute``), instead of ``text``; for ``answer``, ``cut`` and ``stall``.
    """

    kind: str = attrs.field(default="answer", validator=one_of(*STEP_KINDS))
    delay: float = 0.0
    text: str | None = None
    retry_after: float | None = None
    after_chunks: int = 1
    chunk_delay: float = 0.0
    reply: ReplyFunction | None = attrs.field(default=None, validator=_check_reply)

    @classmethod
    def answer(cls, text: str | None = None, delay: float = 0.0) -> Step:
        return cls("answer", delay, text)

    @classmethod
    def compute(cls, reply: ReplyFunction, delay: float = 0.0) -> Step:
        """An answer computed from the request: ``reply(request)`` returns the text (or awaits it).

        Example: ``Step.compute(lambda request: request.message.upper())``. An exception
        it raises is the provider's (a ``ProviderError`` is an outcome, anything else a bug).
        """
        return cls("answer", delay, reply=reply)

    @classmethod
    def transient(cls, delay: float = 0.0) -> Step:
        return cls("transient", delay)

    @classmethod
    def rate_limited(cls, retry_after: float | None = None, delay: float = 0.0) -> Step:
        return cls("rate_limited", delay, retry_after=retry_after)

    @classmethod
    def permanent(cls, delay: float = 0.0) -> Step:
        return cls("permanent", delay)

    @classmethod
    def content_policy(cls) -> Step:
        return cls("content_policy")

    @classmethod
    def hang(cls) -> Step:
        return cls("hang")

    @classmethod
    def unavailable(cls) -> Step:
        return cls("unavailable")

    @classmethod
    def crash(cls) -> Step:
        return cls("crash")

    @classmethod
    def cut(cls, after_chunks: int = 1) -> Step:
        return cls("cut", after_chunks=after_chunks)

    @classmethod
    def stall(cls, after_chunks: int = 1) -> Step:
        return cls("stall", after_chunks=after_chunks)

    @classmethod
    def reject_prefill(cls, text: str | None = None) -> Step:
        return cls("reject_prefill", text=text)


@attrs.frozen
class ScriptedOptions:
    """Options of a ``scripted`` config entry.

    Attributes:
        script: Steps for the first calls, in order.
        default: The step once the script is used up.
        fault_rate: With ``seed`` set: the chance that a call (after the script) fails.
        faults: Which failure steps the random plan draws from.
        seed: Seed of the random fault plan; None disables it.
        model: The model name reported on answers.
        chunks: How many chunks a streamed answer is cut into.
        prefill: Continue a cut answer (``request.prefill``): answer only the rest of
            the step's text after it, like a model that continues a partial answer.
    """

    script: tuple[Step, ...] = ()
    default: Step = Step()
    fault_rate: float = 0.0
    faults: tuple[Step, ...] = (Step("transient"),)
    seed: int | None = None
    model: str = "scripted-model"
    chunks: int = 3
    prefill: bool = False


@attrs.frozen
class Call:
    """One call a ``ScriptedProvider`` received."""

    session_id: str
    persona_id: str
    message: str
    history: tuple[Turn, ...]
    step: Step
    started: float
    ended: float | None
    outcome: str
    concurrency: int
    system_prompt: str = ""


@register_provider("scripted")
class ScriptedProvider(BaseProvider):
    """A provider driven by a script of ``Step``s; records every call.

    Attributes:
        calls: Every finished (or cancelled) call, in finishing order.
        in_flight: Calls running now; ``max_in_flight``: the most seen at once.
    """

    options_type = ScriptedOptions

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.options = provider_options(settings, ScriptedOptions)
        self._script: deque[Step] = deque(self.options.script)
        self.default = self.options.default
        self._random = random.Random(self.options.seed) if self.options.seed is not None else None
        self.calls: list[Call] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.unavailable: str | None = None

    def script(self, *steps: Step) -> None:
        """Queue steps for the next calls."""
        self._script.extend(steps)

    def set_default(self, step: Step) -> None:
        """The step used once the script is exhausted (e.g. ``Step.transient()``: down)."""
        self.default = step

    def unavailable_reason(self) -> str | None:
        return self.unavailable

    def continues_prefill(self) -> bool:
        return self.options.prefill

    def _next_step(self) -> Step:
        if self._script:
            return self._script.popleft()
        if self._random is not None and self._random.random() < self.options.fault_rate:
            return self._random.choice(self.options.faults)
        return self.default

    async def get_response(self, request: ProviderRequest) -> ProviderResponse:
        async with self._recording(request) as step:
            return await self._act(step, request)

    def stream_response(self, request: ProviderRequest) -> AsyncIterator[str | ProviderResponse]:
        return self._stream(request)

    async def _stream(self, request: ProviderRequest) -> AsyncIterator[str | ProviderResponse]:
        async with self._recording(request) as step:
            if step.kind in ("cut", "stall"):
                response = await self._act(attrs.evolve(step, kind="answer"), request)
                if not response.text:
                    raise TransientProviderError(f"{self.name}: scripted stream cut before its first chunk")
            else:
                response = await self._act(step, request)
            for index, chunk in enumerate(_split(response.text, self.options.chunks)):
                if index and step.chunk_delay:
                    await anyio.sleep(step.chunk_delay)
                if index == step.after_chunks and step.kind == "cut":
                    raise TransientProviderError(f"{self.name}: scripted stream cut after {index} chunks")
                if index == step.after_chunks and step.kind == "stall":
                    await anyio.sleep_forever()
                yield chunk
            yield response

    @asynccontextmanager
    async def _recording(self, request: ProviderRequest) -> AsyncIterator[Step]:
        step = self._next_step()
        started = anyio.current_time()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        concurrency = self.in_flight
        outcome = "cancelled"
        try:
            yield step
            outcome = "answer"
        except Exception as exc:
            outcome = type(exc).__name__
            raise
        finally:
            self.in_flight -= 1
            self.calls.append(
                Call(
                    request.session_id, request.persona.id, request.message, request.history, step,
                    started, anyio.current_time(), outcome, concurrency, request.system_prompt,
                )
            )

    async def _act(self, step: Step, request: ProviderRequest) -> ProviderResponse:
        if step.kind in ("hang", "stall"):
            await anyio.sleep_forever()
        if step.delay:
            await anyio.sleep(step.delay)
        if step.kind == "reject_prefill" and request.prefill:
            raise PrefillRejectedError(f"{self.name}: scripted: will not continue a partial answer")
        if step.kind in ("answer", "reject_prefill"):
            text = await self._text(step, request)
            if request.prefill and text.startswith(request.prefill):
                text = text[len(request.prefill) :]  # continue the cut answer
            return ProviderResponse(text, self.options.model, Usage(len(request.message.split()), len(text.split())))
        if step.kind in ("transient", "cut"):
            raise TransientProviderError(f"{self.name}: scripted transient failure")
        if step.kind == "rate_limited":
            raise RateLimitedError(f"{self.name}: scripted rate limit", retry_after=step.retry_after)
        if step.kind == "permanent":
            raise PermanentProviderError(f"{self.name}: scripted permanent failure")
        if step.kind == "content_policy":
            raise ContentPolicyError(f"{self.name}: scripted content policy refusal")
        if step.kind == "unavailable":
            raise ProviderUnavailableError(f"{self.name}: scripted unavailable")
        raise RuntimeError(f"{self.name}: scripted crash (a provider bug)")

    async def _text(self, step: Step, request: ProviderRequest) -> str:
        if step.reply is None:
            return step.text if step.text is not None else f"{self.name}: {request.message}"
        text = step.reply(request)
        if inspect.isawaitable(text):
            text = await text
        if not isinstance(text, str):
            raise TypeError(f"{self.name}: Step.compute's function returned {type(text).__name__}, not str")
        return text

    def messages(self) -> list[str]:
        """The messages of every recorded call, in finishing order."""
        return [call.message for call in self.calls]


def _split(text: str, parts: int) -> Sequence[str]:
    size = max(1, -(-len(text) // max(1, parts)))
    return [text[i : i + size] for i in range(0, len(text), size)]


# -- steps in configs -------------------------------------------------------------------
# The config converter structures entry options strictly from JSON. Steps may also be
# given as they are, and a computed step's function passes through: installed when this
# module is imported, which happens before any "scripted" entry is structured (the
# registry imports the module to find the options type).


def _is_reply_function(type_: Any) -> bool:
    return typing.get_origin(type_) is collections.abc.Callable


def _structure_reply(value: Any, _: Any) -> ReplyFunction:
    if not callable(value):
        raise StrictTypeError("a function of the request", value)
    return value  # type: ignore[no-any-return]


def _install_step_hooks(converter: cattrs.Converter) -> None:
    converter.register_structure_hook_func(_is_reply_function, _structure_reply)
    from_dict = make_dict_structure_fn(
        Step, converter, _cattrs_forbid_extra_keys=True, _cattrs_detailed_validation=True
    )

    def structure_step(value: Any, type_: Any) -> Step:
        if isinstance(value, Step):
            return value
        if not isinstance(value, Mapping):
            raise StrictTypeError("a step (a Step or an object with 'kind')", value)
        return from_dict(value, type_)

    converter.register_structure_hook(Step, structure_step)
    converter.register_unstructure_hook(Step, lambda step: {a.name: getattr(step, a.name) for a in attrs.fields(Step)})


_install_step_hooks(get_converter())
