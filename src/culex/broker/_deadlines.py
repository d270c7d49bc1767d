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


class Deadlines:
    __slots__ = ("_clock", "_key_of", "_keys", "_scheduler", "_slots", "_timer", "_timer_key")

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self._clock = scheduler.time
        self._slots: dict[int, dict[Due, None]] = {}
        self._key_of: dict[Due, int] = {}  # the slot each armed item is in
        self._keys: list[int] = []  # a heap of slot keys; a key whose slot is gone is skipped
        self._timer: Any = None
        self._timer_key = 0

    def arm(self, item: Due, at: float) -> None:
        """``item.deadline_passed`` is called once, at ``at`` or up to one tick later."""
        key = math.ceil(at / TICK)
        old = self._key_of.get(item, 0)
        if old == key:
            return
        if old:
            self._remove(item, old)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = {}
            heappush(self._keys, key)
        slot[item] = None
        self._key_of[item] = key
        if not self._timer_key or key < self._timer_key:
            self._schedule(key)

    def arm_by(self, item: Due, at: float) -> None:
        """Like ``arm``, unless ``item`` is already armed for sooner: that deadline is kept
        (its ``deadline_passed`` must then re-arm for what is still to come)."""
        key = self._key_of.get(item, 0)
        if not key or key * TICK > at:
            self.arm(item, at)

    def disarm(self, item: Due) -> None:
        key = self._key_of.pop(item, 0)
        if key:
            self._remove(item, key)

    def armed(self, item: Due) -> bool:
        return item in self._key_of

    def _remove(self, item: Due, key: int) -> None:
        slot = self._slots.get(key)
        if slot is not None:
            slot.pop(item, None)
            if not slot:
                del self._slots[key]

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
            for item in list(slot):
                # What an earlier item did may have moved or dropped this one.
                if self._key_of.get(item) == key:
                    del self._key_of[item]
                    item.deadline_passed(now)
        while keys and keys[0] not in slots:
            heappop(keys)
        if keys and not self._timer_key:
            self._schedule(keys[0])
