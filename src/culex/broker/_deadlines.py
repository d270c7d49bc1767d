"""Deadlines of many connections on one timer of the event loop.

Every connection has one deadline at a time: its CONNECT timeout, then its keep-alive check.
An event-loop timer per connection costs a timer object, a heap insertion and a cancellation
per connection (measured: 6% of the broker's instructions per connection in a connection
storm). Here deadlines are kept in slots of ``TICK`` seconds: arming, moving or dropping one
is a dict operation, and only the earliest slot has a loop timer.

A deadline is never checked early, and at most ``TICK`` late: a slot is checked at its end,
``key * TICK``. ``TICK`` is a power of two, so that ``at / TICK`` and ``key * TICK`` are exact
and a deadline that falls on a slot's end is checked at that very time.
"""

from __future__ import annotations

import math
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._broker import Scheduler

TICK = 0.25


class Due(Protocol):
    def deadline_passed(self, now: float) -> None: ...


class _Slot:
    """The deadlines that end in one tick; an item's entry points at its slot, not at its
    key: an int of that size would be one more object (32 bytes) per connection."""

    __slots__ = ("items", "key")

    def __init__(self, key: int) -> None:
        self.key = key
        self.items: dict[Due, None] = {}


class Deadlines:
    __slots__ = ("_clock", "_keys", "_scheduler", "_slot_of", "_slots", "_timer", "_timer_key")

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self._clock = scheduler.time
        self._slots: dict[int, _Slot] = {}
        self._slot_of: dict[Due, _Slot] = {}  # the slot each armed item is in
        self._keys: list[int] = []  # a heap of slot keys; a key whose slot is gone is skipped
        self._timer: Any = None
        self._timer_key = 0

    def arm(self, item: Due, at: float) -> None:
        """``item.deadline_passed`` is called once, at ``at`` or up to one tick later."""
        key = math.ceil(at / TICK)
        old = self._slot_of.get(item)
        if old is not None:
            if old.key == key:
                return
            self._remove(item, old)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(key)
            heappush(self._keys, key)
        slot.items[item] = None
        self._slot_of[item] = slot
        if not self._timer_key or key < self._timer_key:
            self._schedule(key)

    def arm_by(self, item: Due, at: float) -> None:
        """Like ``arm``, unless ``item`` is already armed for sooner: that deadline is kept
        (its ``deadline_passed`` must then re-arm for what is still to come)."""
        slot = self._slot_of.get(item)
        if slot is None or slot.key * TICK > at:
            self.arm(item, at)

    def disarm(self, item: Due) -> None:
        slot = self._slot_of.pop(item, None)
        if slot is not None:
            self._remove(item, slot)

    def armed(self, item: Due) -> bool:
        return item in self._slot_of

    def _remove(self, item: Due, slot: _Slot) -> None:
        items = slot.items
        items.pop(item, None)
        if not items and self._slots.get(slot.key) is slot:
            del self._slots[slot.key]

    def _schedule(self, key: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._scheduler.call_later(max(0.0, key * TICK - self._clock()),
                                                 self._fire)
        self._timer_key = key

    def _fire(self) -> None:
        self._timer = None
        self._timer_key = 0
        now = self._clock()
        keys, slots = self._keys, self._slots
        while keys and keys[0] * TICK <= now:
            key = heappop(keys)
            slot = slots.pop(key, None)
            if slot is None:
                continue
            for item in list(slot.items):
                # What an earlier item did may have moved or dropped this one.
                if self._slot_of.get(item) is slot:
                    del self._slot_of[item]
                    item.deadline_passed(now)
        while keys and keys[0] not in slots:
            heappop(keys)
        if keys and not self._timer_key:
            self._schedule(keys[0])
