"""Feeding a cluster session: the node holding a connected persistent session pulls its
queue (its JetStream consumer) and delivers each message through the session's
subscriptions; a message stays held until its client completes it, then is acknowledged to
JetStream (see _sessions, a mixin of whose class this is)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._fetch import batches
from ._records import consumer_name

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from ..broker import Broker, Message
    from ..persistence import SessionState

log = logging.getLogger("culex")

FEED_BATCH = 64


class Held:
    """A message pulled for a session, until its client completes it."""

    __slots__ = ("msg", "taken")

    def __init__(self, msg: Msg | None) -> None:
        self.msg = msg  # the latest delivery of it from JetStream (None: not come again yet)
        self.taken = False  # the session keeps it (queued or in flight)


class Feed:
    """A connected session's consumer being pulled."""

    __slots__ = ("room", "session", "stopping", "task")

    def __init__(self, session: SessionState) -> None:
        self.session = session
        self.stopping = False
        self.room = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class Feeding:
    if TYPE_CHECKING:
        _js: Any
        _stream: str
        _broker: Broker | None
        _loop: asyncio.AbstractEventLoop | None
        _leaving: bool
        _filters: dict[str, list[str]]
        _feeds: dict[str, Feed]
        _held: dict[tuple[str, int], Held]
        _keys: dict[object, tuple[str, int]]
        _counts: dict[str, int]
        _completed: set[tuple[str, int]]
        _tasks: set[asyncio.Task[Any]]

        _to_message: Callable[[str, bytes], Message | None]

        async def flush(self) -> None: ...

    def _follow(self, session: SessionState) -> None:
        client_id = session.client_id
        feed = self._feeds.get(client_id)
        if session.connection is not None and feed is None and not self._leaving \
                and self._js is not None and self._loop is not None:
            feed = self._feeds[client_id] = Feed(session)
            feed.task = self._loop.create_task(self._feed(feed))
        elif session.connection is None and feed is not None:
            self._stop_feed(client_id)  # what it holds is resent on its return

    def _stop_feed(self, client_id: str) -> None:
        feed = self._feeds.pop(client_id, None)
        if feed is not None:
            feed.stopping = True
            feed.room.set()

    async def _feed(self, feed: Feed) -> None:
        session = feed.session
        client_id = session.client_id
        name = consumer_name(client_id)
        if client_id not in self._filters:
            await self.flush()  # the consumer is made with the session's first record
        try:
            pull = await self._js.pull_subscribe_bind(name, self._stream)
        except Exception as exc:
            log.warning("cluster: cannot read the queue of %r: %s", client_id, exc)
            return
        limit = self._window()
        try:
            async for messages in batches(pull, FEED_BATCH, lambda: feed.stopping,
                                          f"the queue of {client_id!r}"):
                for msg in messages:
                    self._arrived(feed, msg)
                while not feed.stopping and self._counts.get(client_id, 0) >= limit:
                    feed.room.clear()
                    await feed.room.wait()
        finally:
            with contextlib.suppress(Exception):
                await pull.unsubscribe()

    def _window(self) -> int:
        broker = self._broker
        assert broker is not None
        limits = broker.limits
        return (limits.max_inflight_messages or 65535) + (limits.max_queued_messages or 1000)

    def _arrived(self, feed: Feed, msg: Msg) -> None:
        client_id = feed.session.client_id
        if feed.stopping or self._feeds.get(client_id) is not feed:
            self._spawn(msg.nak())  # for whoever holds the session next
            return
        seq = msg.metadata.sequence.stream
        key = (client_id, seq)
        held = self._held.get(key)
        if held is not None:  # again (its acknowledgement is late): the same message
            held.msg = msg
            return
        if key in self._completed:  # resent by the previous node, and completed since
            self._completed.discard(key)
            self._spawn(msg.ack())
            return
        message = self._to_message(msg.subject, msg.data)
        broker = self._broker
        if message is None or broker is None:
            self._spawn(msg.ack())
            return
        held = self._held[key] = Held(msg)
        self._counts[client_id] = self._counts.get(client_id, 0) + 1
        self._keys[message] = key
        session = broker.sessions.get(client_id)
        if session is not None and session.store is not None:
            broker.deliver_to_session(session, message)
        if not held.taken:  # delivered at QoS 0, or not wanted: nothing more to wait for
            self._keys.pop(message, None)
            self._done(key)

    def _done(self, key: tuple[str, int]) -> None:
        held = self._held.pop(key, None)
        if held is None:
            return
        self._counts[key[0]] -= 1
        if held.msg is not None:
            self._spawn(held.msg.ack())
        else:
            self._completed.add(key)

    def _drop_held(self, client_id: str, nak: bool) -> None:
        for key in [key for key in self._held if key[0] == client_id]:
            held = self._held.pop(key)
            if nak and held.msg is not None:
                self._spawn(held.msg.nak())
        for message in [m for m, key in self._keys.items() if key[0] == client_id]:
            del self._keys[message]
        self._counts.pop(client_id, None)
        self._completed = {key for key in self._completed if key[0] != client_id}

    def _spawn(self, coro: Any) -> None:
        if self._loop is None:
            coro.close()
            return
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("cluster: acknowledgement to JetStream failed: %s", task.exception())

