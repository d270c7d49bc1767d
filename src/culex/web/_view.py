"""What the dashboard reads of the broker, as plain data: the overview and its last hour, the
clients, the topic tree, the retained messages; and the actions (disconnect, delete retained,
publish)."""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..broker import Message, inspection
from ._topics import TopicTracker, describe

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..broker import Broker
    from ..observability import Counters

SAMPLE_SECONDS = 2.0
HISTORY_SAMPLES = 1800  # an hour
# The series of the overview charts, in the order of each sample after its time.
SERIES = ("connected", "sessions", "subscriptions", "retained", "queued", "messages_in",
          "messages_out", "bytes_in", "bytes_out", "dropped", "commit_ms")


class Recorder:
    """The overview's figures every SAMPLE_SECONDS for the last hour: gauges as they are,
    counters as rates over the interval, the store's mean commit time over it."""

    def __init__(self, broker: Broker, counters: Counters,
                 wall: Callable[[], float] = time.time) -> None:
        self._broker = broker
        self._counters = counters
        self._wall = wall
        self.samples: deque[tuple[float, ...]] = deque(maxlen=HISTORY_SAMPLES)
        self._last: tuple[float, tuple[float, ...]] = (wall(), self._totals())

    def _totals(self) -> tuple[float, ...]:
        c = self._counters
        return (sum(c.messages_received), sum(c.messages_sent), c.bytes_received, c.bytes_sent,
                sum(c.dropped.values()), c.commits, c.commit_seconds)

    def sample(self) -> tuple[float, ...]:
        now, totals = self._wall(), self._totals()
        then, before = self._last
        span = max(now - then, 1e-3)
        diff = [after - earlier for after, earlier in zip(totals, before, strict=True)]
        commit_ms = diff[6] / diff[5] * 1000 if diff[5] else 0.0
        gauges = self._broker.gauges()
        sample = (round(now, 3), gauges.connected, gauges.sessions, gauges.subscriptions,
                  gauges.retained_messages, gauges.queued_messages,
                  *(round(d / span, 1) for d in diff[:5]), round(commit_ms, 3))
        self._last = (now, totals)
        self.samples.append(sample)
        return sample

    def series(self) -> dict[str, Any]:
        columns = list(zip(*self.samples, strict=True)) if self.samples else [()] * 12
        return {"time": list(columns[0]),
                **{name: list(columns[index + 1]) for index, name in enumerate(SERIES)}}


class DashboardView:
    def __init__(self, broker: Broker, counters: Counters,
                 cluster: Callable[[], dict[str, Any] | None] = lambda: None) -> None:
        self._broker = broker
        self._counters = counters
        self._cluster = cluster  # this node and its cluster, if it is in one
        self._start = time.monotonic()
        self.recorder = Recorder(broker, counters)
        self.topics = TopicTracker()
        self.topics.seed(broker.retained.match("#"))
        broker.observe(self.topics.observe)

    def close(self) -> None:
        self._broker.observe(None)

    def overview(self) -> dict[str, Any]:
        samples = self.recorder.samples
        last = dict(zip(SERIES, samples[-1][1:], strict=True)) if samples else None
        counters = self._counters.snapshot()
        del counters["store"]["commit_buckets"]  # its last bound is infinity: not JSON
        return {"uptime": round(time.monotonic() - self._start, 1),
                "counters": counters,
                "gauges": asdict(self._broker.gauges()),
                "sample": last, "sample_time": samples[-1][0] if samples else None,
                "sample_seconds": SAMPLE_SECONDS, "cluster": self._cluster()}

    def history(self) -> dict[str, Any]:
        return self.recorder.series()

    def clients(self) -> list[dict[str, Any]]:
        return inspection.clients(self._broker)

    def disconnect(self, client_id: str) -> bool:
        return inspection.disconnect(self._broker, client_id)

    def retained(self, topic_filter: str) -> list[dict[str, Any]]:
        return inspection.retained(self._broker, topic_filter)

    def retained_messages(self, topic_filter: str, limit: int) -> list[Message]:
        """The retained messages themselves (``limit`` at most), for a browser subscription."""
        return list(itertools.islice(self._broker.retained.match(topic_filter), limit))

    def delete_retained(self, topic_filter: str) -> list[str]:
        return inspection.delete_retained(self._broker, topic_filter)

    def topic_list(self, since: int | None, may_read: Callable[[str], bool]
                   ) -> dict[str, Any]:
        """The topics changed after ``since`` (None: all) that the caller may read, and the
        sequence number to ask from next time."""
        retained = self._broker.retained
        tracker = self.topics
        found = [describe(tracker, topic, retained.get(topic.name) is not None)
                 for topic in tracker.changed(since) if may_read(topic.name)]
        return {"seq": tracker.seq, "topics": found}

    def topic(self, name: str) -> dict[str, Any] | None:
        topic = self.topics.get(name)
        if topic is None:
            return None
        return describe(self.topics, topic, self._broker.retained.get(name) is not None,
                        with_history=True)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool, sender: str) -> int:
        """Publish as the broker does a will: to every matching subscriber; their number."""
        return self._broker.publish(Message(topic, payload, qos, retain, sender=sender))
