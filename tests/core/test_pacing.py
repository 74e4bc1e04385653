"""Client-side pacing within a provider's documented limits (integrations/pacing.py)."""

from __future__ import annotations

import asyncio

from leadflood.integrations.pacing import Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_call_waits_until_every_window_has_room() -> None:
    clock = Clock()
    pacer = Pacer(((3, 1.0), (5, 60.0)), clock=clock)

    async def calls(n: int) -> None:
        for _ in range(n):
            assert pacer.delay() == 0
            await pacer.wait()

    asyncio.run(calls(3))
    assert pacer.delay() == 1.0  # 3 a second: the 4th waits for the first to age out
    clock.now += 1.0
    asyncio.run(calls(2))
    # 5 a minute: the 6th waits until the first call is a minute old.
    assert pacer.delay() == 59.0
    clock.now += 59.0
    assert pacer.delay() == 0


def test_waiting_really_sleeps_the_difference() -> None:
    pacer = Pacer(((2, 0.2),))

    async def burst() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(4):
            await pacer.wait()
        return loop.time() - start

    assert asyncio.run(burst()) >= 0.2  # the 3rd and 4th calls waited for the window


def test_one_pacer_serves_one_event_loop_after_another() -> None:
    """The pacers are process-wide; a worker's loop (or each test's) must not inherit a
    lock bound to a loop that has ended."""
    pacer = Pacer(((1, 0.01),))  # every call after the first sleeps holding the lock

    async def contended() -> None:
        await asyncio.gather(*(pacer.wait() for _ in range(5)))

    asyncio.run(contended())
    asyncio.run(contended())  # a new loop: no "bound to a different event loop"
