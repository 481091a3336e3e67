"""Hypothesis strategies for the runtime: messages, session workloads, fault plans.

from hypothesis import given
from valis_actors.testing import strategies as vst

@given(vst.workloads(max_sessions=5, max_messages=20))
def test_my_app(workload): ...

Needs Hypothesis: ``pip install "valis_actors[testing]"``.
"""

from __future__ import annotations

from ._extras import missing_extra
from ._scripted import Step

try:
    from hypothesis import strategies as st
except ModuleNotFoundError as exc:
    if exc.name is None or exc.name.split(".")[0] != "hypothesis":
        raise
    raise missing_extra("valis_actors.testing.strategies", exc) from None

__all__ = ["fault_plans", "messages", "persona_ids", "session_ids", "steps", "workloads"]


def messages(max_size: int = 200) -> st.SearchStrategy[str]:
    """Valid messages: non-blank text of at most ``max_size`` characters."""
    return st.text(
        alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=max_size
    ).filter(lambda text: text.strip() != "")


def session_ids(count: int | None = None) -> st.SearchStrategy[str]:
    """Session ids; with ``count``, drawn from a pool of that many (so sessions repeat)."""
    if count is not None:
        return st.integers(0, count - 1).map(lambda i: f"session-{i}")
    return st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=40)


def persona_ids() -> st.SearchStrategy[str]:
    """The shipped personas, their aliases, and an unknown id (which gets the neutral persona)."""
    return st.sampled_from(
        ["jane", "guide_sam", "sam", "advisor_alex", "alex", "coach_emma", "emma", "nobody"]
    )


def steps(*, max_delay: float = 5.0, hangs: bool = True) -> st.SearchStrategy[Step]:
    """One scripted provider step: an answer after a delay, or a fault."""
    delay = st.floats(0, max_delay, allow_nan=False, allow_infinity=False)
    options = [
        st.builds(Step.answer, delay=delay),
        st.builds(Step.transient, delay=delay),
        st.builds(Step.rate_limited, retry_after=st.none() | st.floats(0, max_delay), delay=delay),
        st.builds(Step.permanent, delay=delay),
        st.just(Step.content_policy()),
        st.just(Step.unavailable()),
    ]
    if hangs:
        options.append(st.just(Step.hang()))
    return st.one_of(options)


def fault_plans(max_steps: int = 10, **kwargs: float | bool) -> st.SearchStrategy[list[Step]]:
    """A script of steps for a ``ScriptedProvider``."""
    return st.lists(steps(**kwargs), max_size=max_steps)  # type: ignore[arg-type]


def workloads(max_sessions: int = 5, max_messages: int = 30) -> st.SearchStrategy[list[tuple[str, str]]]:
    """A list of ``(session_id, message)`` to send, in order."""
    return st.lists(st.tuples(session_ids(max_sessions), messages(40)), min_size=1, max_size=max_messages)
