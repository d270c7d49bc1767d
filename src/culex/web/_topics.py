"""The dashboard's view of the traffic: each topic's last value, message rate and, for numeric
payloads, a short history (the topic tree); and the browser test client's live subscriptions.

Both see every routed message through ``Broker.observe``, so they exist only where a dashboard
is configured, and do the least they can per message: a dict update, a reference to the
payload (a copy of its first KEEP_BYTES when it is larger or a view into a read buffer), an
exponentially decaying rate (no timer per topic), and a number parsed at most once a second
per topic. Memory is bounded: MAX_TOPICS topics (the least recently updated go first), each
with at most HISTORY_POINTS points; each watch holds at most WATCH_QUEUE messages.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..protocol import topic_matches

if TYPE_CHECKING:
    from ..broker import Message

MAX_TOPICS = 10_000
KEEP_BYTES = 1024  # of each topic's last payload
HISTORY_POINTS = 300  # numeric values per topic
HISTORY_EVERY = 1.0  # seconds between two history points of one topic
RATE_SECONDS = 10.0  # time constant of the message rate
MAX_WATCHES = 32  # browser test-client subscriptions, all logins together
WATCH_QUEUE = 1000  # messages waiting for one browser


class Topic:
    __slots__ = ("count", "due", "history", "name", "payload", "qos", "rate", "seq", "size",
                 "time")

    def __init__(self, name: str) -> None:
        self.name = name
        self.payload: bytes = b""
        self.size = 0  # of the whole payload
        self.qos = 0
        self.time = 0.0  # of the last message, on the tracker's clock (0: none seen)
        self.count = 0
        self.rate = 0.0  # messages per second, as it was at ``time``
        self.history: deque[tuple[float, float]] | None = None  # (time, value)
        self.seq = 0  # the tracker's sequence number at its last change
        self.due = 0.0  # time from which the next payload is looked at as a number


def kept(payload: bytes | memoryview) -> bytes:
    """What is kept of a payload: the bytes themselves if small (no copy), else a copy of the
    start (never a view that would pin a large read buffer)."""
    if type(payload) is bytes and len(payload) <= KEEP_BYTES:
        return payload
    return bytes(payload[:KEEP_BYTES])


def number(payload: bytes) -> float | None:
    """The payload as a number, if it is one ("21.5", " 48 ", "1e3"); not NaN nor infinite."""
    if not payload or len(payload) > 32:
        return None
    try:
        value = float(payload)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class Watch:
    """One browser test-client subscription: messages matching its filter that its login
    may read, queued for the browser, the oldest dropped when it does not keep up."""

    def __init__(self, topic_filter: str, may_read: Callable[[str], bool]) -> None:
        self.topic_filter = topic_filter
        self._may_read = may_read
        self._allowed: dict[str, bool] = {}
        self.queue: asyncio.Queue[tuple[str, bytes, int, bool, int]] = asyncio.Queue(
            WATCH_QUEUE)
        self.lost = 0

    def offer(self, message: Message) -> None:
        topic = message.topic
        if not topic_matches(self.topic_filter, topic):
            return
        allowed = self._allowed.get(topic)
        if allowed is None:
            if len(self._allowed) > 4096:
                self._allowed.clear()
            allowed = self._allowed[topic] = self._may_read(topic)
        if allowed:
            self.put(topic, message.payload, message.qos, message.retain)

    def put(self, topic: str, payload: bytes | memoryview, qos: int, retain: bool) -> None:
        item = (topic, kept(payload), qos, retain, len(payload))
        if self.queue.full():
            self.queue.get_nowait()
            self.lost += 1
        self.queue.put_nowait(item)


class TopicTracker:
    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._wall = wall
        self._topics: OrderedDict[str, Topic] = OrderedDict()
        self._watches: list[Watch] = []
        self.seq = 0

    def observe(self, message: Message) -> None:
        """A message was routed (called by the broker for each one)."""
        name = message.topic
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = Topic(name)
            if len(self._topics) > MAX_TOPICS:
                self._topics.popitem(last=False)
        else:
            self._topics.move_to_end(name)
        now = self._clock()
        payload = message.payload
        topic.payload = kept(payload)
        topic.size = len(payload)
        topic.qos = message.qos
        topic.count += 1
        topic.rate = topic.rate * math.exp((topic.time - now) / RATE_SECONDS) + 1 / RATE_SECONDS
        topic.time = now
        self.seq += 1
        topic.seq = self.seq
        if topic.time >= topic.due:
            topic.due = topic.time + HISTORY_EVERY
            value = number(topic.payload)
            if value is not None:
                if topic.history is None:
                    topic.history = deque(maxlen=HISTORY_POINTS)
                topic.history.append((topic.time, value))
        for watch in self._watches:
            watch.offer(message)

    def seed(self, messages: Iterator[Message]) -> None:
        """Start from what is known already (the retained messages), counting nothing."""
        for message in messages:
            topic = self._topics[message.topic] = Topic(message.topic)
            topic.payload = kept(message.payload)
            topic.size = len(message.payload)
            topic.qos = message.qos
            if len(self._topics) >= MAX_TOPICS:
                break

    def rate(self, topic: Topic) -> float:
        return topic.rate * math.exp((topic.time - self._clock()) / RATE_SECONDS)

    def wall(self, moment: float) -> float:
        """A time of the tracker's clock on the wall clock (one clock read per message, not
        two: the conversion is made when a page asks)."""
        return moment + self._wall() - self._clock()

    def changed(self, since: int | None = None) -> Iterator[Topic]:
        """The topics changed after sequence number ``since`` (None: all)."""
        if since is None:
            yield from self._topics.values()
            return
        # The topics are kept in the order of their last change: the changed ones are last.
        for topic in reversed(self._topics.values()):
            if topic.seq <= since:
                return
            yield topic

    def get(self, name: str) -> Topic | None:
        return self._topics.get(name)

    def watch(self, topic_filter: str, may_read: Callable[[str], bool]) -> Watch | None:
        """A new test-client subscription, or None if there are MAX_WATCHES already."""
        if len(self._watches) >= MAX_WATCHES:
            return None
        watch = Watch(topic_filter, may_read)
        self._watches = [*self._watches, watch]  # observe() may be iterating the old list
        return watch

    def unwatch(self, watch: Watch) -> None:
        self._watches = [other for other in self._watches if other is not watch]


def payload_text(payload: bytes) -> tuple[str, bool]:
    """(text, binary): the payload as text if it is UTF-8, else its first bytes in hex."""
    try:
        return payload.decode("utf-8"), False
    except UnicodeDecodeError:
        return payload[:256].hex(), True


def describe(tracker: TopicTracker, topic: Topic, retained: bool, with_history: bool = False
             ) -> dict[str, Any]:
    """A topic as the page reads it."""
    text, binary = payload_text(topic.payload)
    entry: dict[str, Any] = {
        "topic": topic.name, "payload": text, "binary": binary, "size": topic.size,
        "truncated": topic.size > len(topic.payload),
        "qos": topic.qos, "retained": retained,
        "time": round(tracker.wall(topic.time), 3) if topic.time else None,
        "count": topic.count, "rate": round(tracker.rate(topic), 3),
        "numeric": topic.history is not None,
    }
    if with_history:
        entry["history"] = [[round(tracker.wall(t), 3), v] for t, v in topic.history or ()]
    return entry
