"""What one of this node's JetStream consumers has handled, by stream sequence, until JetStream
counts it acknowledged. An acknowledgement is a message like any other: on its way to a
consumer's leader that steps down (a NATS server restarting, or just re-electing) it is lost,
and JetStream sends the message again ``redeliver_after`` later. That copy, recognised here,
is acknowledged and not delivered a second time (MQTT-4.3.3-2 asks one delivery of a QoS 2
message). A message sent again that this node never handled (its first copy lost on the way,
or handed back by another node) is delivered as usual."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any


class Handled:
    __slots__ = ("_consumer", "_every", "_js", "_order", "_pruned_at", "_seqs", "_stream",
                 "_task")

    def __init__(self, js: Any, stream: str, consumer: str, every: float) -> None:
        """``every``: seconds between two looks at the consumer's acknowledgement floor (a
        JetStream API request)."""
        self._js, self._stream, self._consumer = js, stream, consumer
        self._every = every
        self._seqs: set[int] = set()
        self._order: deque[int] = deque()  # the same, oldest first: what is pruned first
        self._pruned_at = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        """How many messages it remembers."""
        return len(self._seqs)

    def again(self, msg: Any) -> bool:
        """Whether ``msg`` is a copy of one this consumer handled (its acknowledgement lost)."""
        metadata = msg.metadata
        return metadata.num_delivered > 1 and metadata.sequence.stream in self._seqs

    def add(self, msg: Any) -> None:
        """``msg`` was handled here: delivered, or found to be for nobody."""
        seq = msg.metadata.sequence.stream
        if seq not in self._seqs:
            self._seqs.add(seq)
            self._order.append(seq)

    def prune_soon(self) -> None:
        """``prune`` in the background: the loop that pulls does not wait for JetStream's
        answer (slow while it elects a leader). The task is kept: the loop holds it weakly."""
        if self._due():
            self._task = asyncio.get_running_loop().create_task(self._prune())

    async def prune(self) -> None:
        """Forget what JetStream counts acknowledged (at or below the consumer's floor, where
        nothing is sent again): looked up at most once in ``every`` seconds, if needed."""
        if self._due():
            await self._prune()

    def _due(self) -> bool:
        """Whether to look up the floor now (then not again for ``every`` seconds)."""
        now = time.monotonic()
        if not self._order or now - self._pruned_at < self._every:
            return False
        self._pruned_at = now
        return True

    async def _prune(self) -> None:
        try:
            info = await self._js.consumer_info(self._stream, self._consumer)
        except Exception:  # NATS away, or the consumer gone: next time
            return
        floor = info.ack_floor.stream_seq
        order, seqs = self._order, self._seqs
        while order and order[0] <= floor:
            seqs.discard(order.popleft())
