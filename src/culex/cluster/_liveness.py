"""Which nodes of the cluster are alive, and what happens when one is not: its clients' wills
are published, once, by the survivors (docs/cluster.md, "Node failure").

Each node writes its key in a key-value bucket every HEARTBEAT seconds; every node watches
the bucket and notes, on its own monotonic clock, when it last heard of each node. A node not
heard of for DEAD_AFTER seconds is dead (a node that stops cleanly deletes its key first, and
its clients' claims, so nobody mourns it). For each client claim the dead node left, the
survivors race to delete it by compare-and-set; the one that wins publishes the claim's will,
after its will delay unless the client connected again meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..broker import Message
from ._envelope import Envelope, decode, encode
from ._patience import patiently
from ._subjects import decode_level, encode_level

if TYPE_CHECKING:
    from ._owners import Owners

log = logging.getLogger("culex")

HEARTBEAT = 1.0
DEAD_AFTER = 5.0


def will_record(node: str, will: tuple[Message, int, int | None] | None
                ) -> dict[str, Any] | None:
    """A will as a claim keeps it (JSON): the message in an envelope, its delay and expiry."""
    if will is None:
        return None
    message, delay, expiry = will
    data = encode(Envelope(node, 0, 0, message.qos, message.retain, message.sender, None,
                           message.properties, message.payload))
    return {"topic": message.topic, "data": base64.b64encode(data).decode(), "delay": delay,
            "expiry": expiry}


def will_message(record: dict[str, Any], now: float) -> Message:
    envelope = decode(base64.b64decode(record["data"]))
    expiry = record.get("expiry")
    return Message(str(record["topic"]), envelope.payload, envelope.qos, envelope.retain,
                   envelope.properties, None if expiry is None else now + float(expiry),
                   envelope.sender)


class Liveness:
    def __init__(self, node: str, owners: Owners, publish: Callable[[Message], int],
                 clock: Callable[[], float],
                 gone: Callable[[str], None] | None = None) -> None:
        self._node = node
        # Told of each node that died or stopped (the sessions it held are taken).
        self._gone = gone
        self._key = encode_level(node)
        self._owners = owners
        self._publish = publish
        self._clock = clock
        self._kv: Any = None
        self._heard: dict[str, float] = {}  # node key -> monotonic time last heard of
        self._tasks: set[asyncio.Task[None]] = set()
        self.dead: list[str] = []  # nodes found dead, for the record

    async def start(self, kv: Any) -> None:
        self._kv = kv
        await patiently(lambda: kv.put(self._key, b"0"))  # the bucket may be brand new
        watcher = await kv.watchall()
        loop = asyncio.get_running_loop()
        for coro in (self._beat(), self._listen(watcher), self._check()):
            task = loop.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._kv is not None:
            with contextlib.suppress(Exception):
                await self._kv.delete(self._key)

    @property
    def alive(self) -> list[str]:
        return sorted(decode_level(key) for key in self._heard)

    async def _beat(self) -> None:
        count = 0
        while True:
            await asyncio.sleep(HEARTBEAT)
            count += 1
            with contextlib.suppress(Exception):  # NATS away: the next beat says it again
                await self._kv.put(self._key, str(count).encode())

    async def _listen(self, watcher: Any) -> None:
        while True:
            entry = await watcher.updates(timeout=None)
            if entry is None or entry.key == self._key:
                continue
            if entry.operation is not None:
                if self._heard.pop(entry.key, None) is not None and self._gone:
                    self._gone(decode_level(entry.key))  # stopped cleanly
            else:
                self._heard[entry.key] = time.monotonic()

    async def _check(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            now = time.monotonic()
            for key, heard in list(self._heard.items()):
                if now - heard > DEAD_AFTER:
                    del self._heard[key]
                    self._died(decode_level(key))

    def _died(self, node: str) -> None:
        log.warning("cluster: node %s is silent for %.0f s: taken for dead; its clients' "
                    "wills are published", node, DEAD_AFTER)
        self.dead.append(node)
        if self._gone is not None:
            self._gone(node)
        for key, (revision, owner, will) in list(self._owners.known.items()):
            if owner == node:
                task = asyncio.get_running_loop().create_task(self._bury(key, revision, will))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _bury(self, key: str, revision: int, will: dict[str, Any] | None) -> None:
        if not await self._owners.take(key, revision) or will is None:
            return
        delay = float(will.get("delay") or 0)
        if delay:
            await asyncio.sleep(delay)
            if await self._owners.reclaimed(key):
                return  # its client came back within the will delay (MQTT 5.0 3.1.3.2.2)
        try:
            message = will_message(will, self._clock())
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("cluster: a dead node's will for %s cannot be read: %s", key, exc)
            return
        self._publish(message)
