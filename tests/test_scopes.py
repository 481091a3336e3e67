"""The per-message cancel scopes (``scope_class()``): each is cancelled at its own deadline, no sooner.

On asyncio the runtime's scopes share one loop timer (``DeadlineQueue``); on trio they
are trio's own. The same tests run on both, on virtual time: a scope's deadline cancels
its work at that instant, whatever the order in which deadlines arrive, a changed
deadline is the one kept, a scope that was left is never cancelled later, and the
cancelling is anyio's (shields hold, an outer scope's cancel is the outer scope's).
"""

from __future__ import annotations

import math

import anyio
import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from valis_actors._actors._signal import scope_class
from valis_actors.testing import run_on_virtual_time

pytestmark = pytest.mark.anyio


async def test_a_deadline_cancels_its_work_at_that_instant() -> None:
    new_scope = scope_class()
    start = anyio.current_time()
    with new_scope(deadline=start + 5) as scope:
        await anyio.sleep(60)
    assert scope.cancelled_caught and scope.cancel_called
    assert anyio.current_time() - start == pytest.approx(5, abs=1e-3)


async def test_deadlines_out_of_order_each_cancel_at_their_own_time() -> None:
    new_scope = scope_class()
    start = anyio.current_time()
    ended: dict[str, float] = {}

    async def run(name: str, after: float) -> None:
        with new_scope(deadline=start + after):
            await anyio.sleep(60)
        ended[name] = anyio.current_time() - start

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, "late", 10.0)
        await anyio.sleep(1)
        tg.start_soon(run, "early", 2.0)  # earlier than the one before it
        tg.start_soon(run, "middle", 7.0)
    assert ended == pytest.approx({"early": 2.0, "middle": 7.0, "late": 10.0}, abs=1e-3)


@pytest.mark.parametrize(("new", "expected"), [(2.0, 2.0), (8.0, 8.0), (math.inf, 20.0), (-1.0, 1.0)])
async def test_a_changed_deadline_is_the_one_kept(new: float, expected: float) -> None:
    new_scope = scope_class()
    start = anyio.current_time()
    with new_scope(deadline=start + 5) as scope:
        await anyio.sleep(1)
        scope.deadline = start + new  # tightened, loosened, removed, already past
        await anyio.sleep(19)
    assert anyio.current_time() - start == pytest.approx(expected, abs=1e-3)
    assert scope.cancelled_caught is (new != math.inf)


async def test_a_scope_left_is_not_cancelled_later() -> None:
    new_scope = scope_class()
    start = anyio.current_time()
    scopes = []
    for _ in range(1000):
        with new_scope(deadline=anyio.current_time() + 30) as scope:
            await anyio.sleep(0.01)
        scopes.append(scope)
    await anyio.sleep(60)  # every deadline passed meanwhile
    assert not any(s.cancel_called for s in scopes)
    assert anyio.current_time() - start == pytest.approx(70, abs=1e-2)
    queue = getattr(new_scope, "__self__", None)  # asyncio's DeadlineQueue: nothing left in it
    assert queue is None or not queue.scopes


async def test_cancel_before_and_while_entered() -> None:
    new_scope = scope_class()
    early = new_scope(deadline=anyio.current_time() + 30)
    early.cancel()
    with early:
        await anyio.sleep(10)
    assert early.cancelled_caught
    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        scope = new_scope(deadline=start + 30)

        async def run() -> None:
            with scope:
                await anyio.sleep(60)

        tg.start_soon(run)
        await anyio.sleep(4)
        scope.cancel()  # from another task
    assert scope.cancelled_caught
    assert anyio.current_time() - start == pytest.approx(4, abs=1e-3)


async def test_a_shield_inside_holds_against_the_deadline() -> None:
    new_scope = scope_class()
    start = anyio.current_time()
    with new_scope(deadline=start + 1) as scope:
        with anyio.CancelScope(shield=True):
            await anyio.sleep(3)
        shielded_until = anyio.current_time() - start
        await anyio.sleep(60)
    assert shielded_until == pytest.approx(3, abs=1e-3)
    assert scope.cancelled_caught
    assert anyio.current_time() - start == pytest.approx(3, abs=1e-3)


@pytest.mark.parametrize("inner_after", [10.0, 2.0])  # later than the outer's; the same instant
async def test_an_outer_scope_cancel_is_the_outer_scopes(inner_after: float) -> None:
    new_scope = scope_class()
    start = anyio.current_time()
    with anyio.move_on_after(2) as outer:
        with new_scope(deadline=start + inner_after) as inner:
            await anyio.sleep(60)
        await anyio.sleep(60)  # reached when the inner scope caught it: the outer's cancel still holds
    if inner_after > 2:
        assert outer.cancelled_caught and not inner.cancelled_caught
    else:
        assert outer.cancelled_caught or inner.cancelled_caught
    assert anyio.current_time() - start == pytest.approx(2, abs=1e-3)


@attrs.frozen
class Spec:
    """One scope of a schedule: entered at ``start``, works ``work`` s, deadline after ``deadline`` s.

    ``change`` is (when, new deadline), both after ``start``: the owner moves the deadline.
    """

    start: int
    work: int
    deadline: float
    change: tuple[float, float] | None

    def expected_end(self) -> float:
        """When the scope ends: its work done, or its deadline (the one in force) reached."""
        end = float(self.work)
        first = self.deadline
        if self.change is None or first <= self.change[0]:
            return min(end, first)
        at, second = self.change
        if at >= end:
            return end
        return min(end, max(at, second))


offsets = st.one_of(st.integers(0, 20).map(lambda n: n + 0.5), st.just(math.inf))
specs = st.builds(
    Spec,
    start=st.integers(0, 10),
    work=st.integers(1, 20),
    deadline=offsets,
    change=st.none() | st.tuples(st.integers(0, 20).map(lambda n: n + 0.25), offsets),
)


async def run_schedule(schedule: list[Spec]) -> list[tuple[float, bool]]:
    new_scope = scope_class()
    origin = anyio.current_time()
    ended: list[tuple[float, bool]] = [(-1.0, False)] * len(schedule)

    async def run(index: int, spec: Spec) -> None:
        await anyio.sleep_until(origin + spec.start)
        began = anyio.current_time()
        scope = new_scope(deadline=began + spec.deadline)
        async with anyio.create_task_group() as tg:
            if spec.change is not None:
                at, deadline = spec.change

                async def change() -> None:
                    await anyio.sleep_until(began + at)
                    scope.deadline = began + deadline

                tg.start_soon(change)
            with scope:
                await anyio.sleep(spec.work)
            tg.cancel_scope.cancel()
        ended[index] = (anyio.current_time() - began, scope.cancelled_caught)

    async with anyio.create_task_group() as tg:
        for index, spec in enumerate(schedule):
            tg.start_soon(run, index, spec)
    return ended


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=st.lists(specs, min_size=1, max_size=12))
def test_any_schedule_ends_every_scope_at_its_deadline_or_its_work(backend: str, schedule: list[Spec]) -> None:
    ended = run_on_virtual_time(run_schedule, schedule, backend=backend)
    for spec, (elapsed, caught) in zip(schedule, ended, strict=True):
        expected = spec.expected_end()
        assert elapsed == pytest.approx(expected, abs=1e-3), spec
        assert caught is (expected < spec.work), spec
