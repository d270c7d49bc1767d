"""Feeding a cluster session: the node holding a connected persistent session pulls its
queue (its JetStream consumer) and delivers each message through the session's
subscriptions; a message stays held until its client completes it, then is acknowledged to
JetStream (see _sessions, a mixin of whose class this is).

The node pulls through an inbox of the feed's own, one request at a time for as many messages
as the session has room for, each for half a second at most. When the session goes to another
node, the feed asks for no more, takes what its last request still brings until that request
ends, unsubscribes, and hands back (NAK) what it held and was brought, in the queue's order,
before the other node is answered: JetStream redelivers in that order, before anything newer,
so the session's client gets its messages in order across nodes (MQTT-4.6.0-6)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._fetch import ENDED, MESSAGE, Pulling
from ._handled import Handled
from ._records import consumer_name

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from ..broker import Broker, Message
    from ..persistence import SessionState

log = logging.getLogger("culex")

FEED_BATCH = 64
PULL_EXPIRES = 0.5  # seconds a pull request waits at the server for messages
# Seconds between two looks at a session's acknowledgement floor (see _handled): one request
# per session with messages flowing, so less often than for the node's own consumer.
FEED_PRUNE_EVERY = 5.0


class Held:
    """A message pulled for a session, until its client completes it."""

    __slots__ = ("msg", "taken")

    def __init__(self, msg: Msg | None) -> None:
        self.msg = msg  # the latest delivery of it from JetStream (None: not come again yet)
        self.taken = False  # the session keeps it (queued or in flight)


class Feed(Pulling):
    """A connected session's consumer being pulled."""

    __slots__ = ("give_back", "handled", "room", "session", "stopping", "task")

    def __init__(self, session: SessionState, handled: Handled) -> None:
        super().__init__()
        self.session = session
        self.handled = handled  # what it delivered, until JetStream counts it acknowledged
        self.stopping = False
        self.room = asyncio.Event()  # something changed: the feed looks whether to ask more
        self.give_back: list[Msg] = []  # to hand back to JetStream once nothing more comes
        self.task: asyncio.Task[None] | None = None


class Feeding:
    if TYPE_CHECKING:
        _js: Any
        _nc: Any
        _stream: str
        _broker: Broker | None
        _loop: asyncio.AbstractEventLoop | None
        _leaving: bool
        _filters: dict[str, list[str]]
        _feeds: dict[str, Feed]
        _draining: dict[str, Feed]
        _ending: dict[str, asyncio.Task[None]]
        _held: dict[tuple[str, int], Held]
        _keys: dict[object, tuple[str, int]]
        _counts: dict[str, int]
        _completed: set[tuple[str, int]]
        _acks: set[asyncio.Task[Any]]

        _to_message: Callable[[str, bytes], Message | None]

        async def flush(self) -> None: ...

    def _follow(self, session: SessionState) -> None:
        client_id = session.client_id
        feed = self._feeds.get(client_id)
        if session.connection is not None and feed is None and not self._leaving \
                and self._js is not None and self._loop is not None:
            feed = self._feeds[client_id] = Feed(
                session, Handled(self._js, self._stream, consumer_name(client_id),
                                 FEED_PRUNE_EVERY))
            feed.task = self._loop.create_task(self._feed(feed))
        elif session.connection is None and feed is not None:
            self._stop_feed(client_id)  # what it holds is resent on its return

    def _stop_feed(self, client_id: str) -> None:
        feed = self._feeds.pop(client_id, None)
        if feed is not None:
            feed.stopping = True
            feed.room.set()
            if feed.task is not None and not feed.task.done():
                self._draining[client_id] = feed  # until nothing more comes to it
                self._ending[client_id] = feed.task  # until what it held is handed back

    async def _feed(self, feed: Feed) -> None:
        client_id = feed.session.client_id
        try:
            await self._pull(feed)
        finally:
            # No longer draining before its hand-back starts: what is let go of from now on
            # is handed back on its own (_drop_held), not added to a list already read.
            if self._draining.get(client_id) is feed:
                del self._draining[client_id]
            try:
                if feed.give_back:
                    await self._hand_back(client_id, feed.give_back)
            finally:
                if self._ending.get(client_id) is feed.task:
                    del self._ending[client_id]

    async def _hand_back(self, client_id: str, msgs: list[Msg]) -> None:
        """Hand ``msgs`` back to JetStream (NAK), in the queue's order: it redelivers them in
        the order they come back. The consumer's info is asked first: JetStream then drops
        the pull requests nobody listens to any more (this node's, stopped), where a NAK
        that found one would be put at the end of the redelivery queue, after the others."""
        latest = {msg.metadata.sequence.stream: msg for msg in msgs}
        with contextlib.suppress(Exception):
            await self._js.consumer_info(self._stream, consumer_name(client_id))
        for seq in sorted(latest):
            with contextlib.suppress(Exception):
                await latest[seq].nak()

    async def _pull(self, feed: Feed) -> None:
        session = feed.session
        client_id = session.client_id
        if client_id not in self._filters:
            await self.flush()  # the consumer is made with the session's first record
        if feed.stopping:
            return
        inbox = self._nc.new_inbox()

        async def delivered(msg: Msg) -> None:
            self._delivered(feed, msg)

        try:
            sub = await self._nc.subscribe(inbox, cb=delivered)
        except Exception as exc:
            log.warning("cluster: cannot read the queue of %r: %s", client_id, exc)
            return
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{self._stream}.{consumer_name(client_id)}"
        limit = self._window()
        try:
            while not feed.stopping:
                now = time.monotonic()
                want = min(FEED_BATCH, limit - self._counts.get(client_id, 0))
                if not feed.pending(now, PULL_EXPIRES) and want > 0:
                    feed.ask(want, now)
                    request = {"batch": want, "expires": int(PULL_EXPIRES * 1e9)}
                    try:
                        await self._nc.publish(subject, json.dumps(request).encode(), inbox)
                    except Exception as exc:  # NATS away: asked again once it is back
                        log.debug("cluster: pulling the queue of %r: %s", client_id, exc)
                feed.room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(feed.room.wait(), PULL_EXPIRES + 1.0)
                feed.handled.prune_soon()
            # The last request may bring messages until it ends (all it asked for, or its
            # expiry). Only then does nothing more come: had the inbox gone first, JetStream
            # would give the next message to the request left behind, find nobody there, and
            # redeliver it later, after messages handed back before it.
            end = feed.asked_at + PULL_EXPIRES + 0.5
            while feed.asked and (left := end - time.monotonic()) > 0:
                feed.room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(feed.room.wait(), left)
        finally:
            # The server stops giving to this inbox once it has the unsubscription; what it
            # sent before comes in meanwhile (to be handed back with the rest: see above).
            with contextlib.suppress(Exception):
                await sub.drain()

    def _delivered(self, feed: Feed, msg: Msg) -> None:
        what = feed.answered(msg, PULL_EXPIRES)
        if what == MESSAGE:
            self._arrived(feed, msg)
        if what in (MESSAGE, ENDED) and not feed.asked:
            feed.room.set()

    def _window(self) -> int:
        broker = self._broker
        assert broker is not None
        limits = broker.limits
        return (limits.max_inflight_messages or 65535) + (limits.max_queued_messages or 1000)

    def _arrived(self, feed: Feed, msg: Msg) -> None:
        client_id = feed.session.client_id
        broker = self._broker
        session = broker.sessions.get(client_id) if broker is not None else None
        if session is None or session is not feed.session or session.store is None:
            feed.give_back.append(msg)  # let go of (or ended): for whoever holds it next
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
        if feed.handled.again(msg):  # completed here; its acknowledgement was lost
            self._spawn(msg.ack())
            return
        feed.handled.add(msg)
        message = self._to_message(msg.subject, msg.data)
        if message is None or broker is None:
            self._spawn(msg.ack())
            return
        held = self._held[key] = Held(msg)
        self._counts[client_id] = self._counts.get(client_id, 0) + 1
        self._keys[message] = key
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
        """Forget what is held for the session (``nak``: handed back to JetStream, once its
        feed has stopped receiving: else what it hands back could come to it again)."""
        feed = self._draining.get(client_id)
        give_back = feed.give_back if feed is not None else []
        for key in [key for key in self._held if key[0] == client_id]:
            held = self._held.pop(key)
            if nak and held.msg is not None:
                give_back.append(held.msg)
        if give_back and feed is None:
            self._spawn(self._hand_back(client_id, give_back))
        for message in [m for m, key in self._keys.items() if key[0] == client_id]:
            del self._keys[message]
        self._counts.pop(client_id, None)
        self._completed = {key for key in self._completed if key[0] != client_id}

    def _spawn(self, coro: Any) -> None:
        if self._loop is None:
            coro.close()
            return
        task = self._loop.create_task(coro)
        self._acks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._acks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("cluster: acknowledgement to JetStream failed: %s", task.exception())

    async def _handed_back(self, feeds: list[asyncio.Task[None]], timeout: float) -> bool:
        """Until the stopped feeds (their tasks) have nothing more coming from JetStream and
        what they held is handed back to it: then another node pulls their queues in order.
        Whether that was done within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        done = True
        for waiting in (feeds, list(self._acks)):
            if waiting:
                left = max(0.0, deadline - time.monotonic())
                _, pending = await asyncio.wait(waiting, timeout=left)
                done = done and not pending
        try:
            await self._nc.flush(max(0.01, deadline - time.monotonic()))
        except Exception:  # the server may not have them before the other node asks
            done = False
        return done
