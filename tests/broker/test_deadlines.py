"""Connection deadlines on one timer: never early, at most one tick late, moved and dropped."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from culex.broker._deadlines import TICK, Deadlines

from support import FakeScheduler


class Item:
    def __init__(self, name: str, log: list[tuple[str, float]]) -> None:
        self.name = name
        self.log = log
        self.then: list[tuple[Deadlines, Item, float | None]] = []

    def deadline_passed(self, now: float) -> None:
        self.log.append((self.name, now))
        for deadlines, other, at in self.then:
            if at is None:
                deadlines.disarm(other)
            else:
                deadlines.arm(other, at)


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), min_size=1,
                max_size=30))
def test_each_deadline_is_met_once_never_early_at_most_one_tick_late(delays: list[float]) -> None:
    clock = FakeScheduler()
    deadlines = Deadlines(clock)
    log: list[tuple[str, float]] = []
    due = {}
    for i, delay in enumerate(delays):
        deadlines.arm(Item(str(i), log), clock.now + delay)
        due[str(i)] = clock.now + delay
    clock.advance(100 + 2 * TICK)
    assert sorted(name for name, _ in log) == sorted(due)
    for name, when in log:
        assert due[name] <= when <= due[name] + TICK
    assert [when for _, when in log] == sorted(when for _, when in log)


def test_a_deadline_on_a_slot_boundary_is_met_exactly() -> None:
    clock = FakeScheduler()
    deadlines = Deadlines(clock)
    log: list[tuple[str, float]] = []
    deadlines.arm(Item("a", log), clock.now + 15)
    clock.advance(14.9)
    assert log == []
    clock.advance(0.1)
    assert log == [("a", clock.now)]


def test_moved_and_dropped_deadlines() -> None:
    clock = FakeScheduler()
    deadlines = Deadlines(clock)
    log: list[tuple[str, float]] = []
    a, b, c = Item("a", log), Item("b", log), Item("c", log)
    deadlines.arm(a, clock.now + 5)
    deadlines.arm(b, clock.now + 5)
    deadlines.arm(c, clock.now + 10)
    deadlines.arm(a, clock.now + 20)  # later
    deadlines.arm(c, clock.now + 1)  # earlier than the timer that was set
    deadlines.disarm(b)
    deadlines.disarm(b)  # twice is harmless
    clock.advance(30)
    assert log == [("c", 1001.0), ("a", 1020.0)]
    assert not any(deadlines.armed(item) for item in (a, b, c))


def test_what_one_deadline_does_to_another_in_the_same_slot_is_respected() -> None:
    clock = FakeScheduler()
    deadlines = Deadlines(clock)
    log: list[tuple[str, float]] = []
    first, dropped, moved, rearmed = (Item(n, log) for n in ("first", "dropped", "moved",
                                                              "rearmed"))
    for item in (first, dropped, moved):
        deadlines.arm(item, clock.now + 2)
    first.then = [(deadlines, dropped, None), (deadlines, moved, clock.now + 7),
                  (deadlines, rearmed, clock.now + 2)]  # into the slot being run
    clock.advance(10)
    assert log == [("first", 1002.0), ("rearmed", 1002.0), ("moved", 1007.0)]


def test_arm_by_keeps_a_sooner_deadline_and_brings_a_later_one_forward() -> None:
    clock = FakeScheduler()
    deadlines = Deadlines(clock)
    log: list[tuple[str, float]] = []
    kept, moved, fresh = Item("kept", log), Item("moved", log), Item("fresh", log)
    deadlines.arm(kept, clock.now + 2)
    deadlines.arm(moved, clock.now + 20)
    deadlines.arm_by(kept, clock.now + 10)
    deadlines.arm_by(moved, clock.now + 5)
    deadlines.arm_by(fresh, clock.now + 7)
    clock.advance(30)
    assert log == [("kept", 1002.0), ("moved", 1005.0), ("fresh", 1007.0)]
