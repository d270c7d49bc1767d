"""The dashboard's topic tracker, on a fake clock: last values, rates, numeric history,
bounded memory, changes in order."""

from __future__ import annotations

import itertools
import math

from hypothesis import given
from hypothesis import strategies as st

from culex.broker import Message
from culex.web import _topics
from culex.web._topics import TopicTracker, kept, number


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tracker() -> tuple[TopicTracker, Clock]:
    clock = Clock()
    return TopicTracker(clock, clock), clock


def test_last_value_count_and_rate() -> None:
    topics, clock = tracker()
    for _ in range(200):  # 10 messages a second for 20 s
        topics.observe(Message("maison/salon/temperature", b"21.5", 1))
        clock.now += 0.1
    topic = topics.get("maison/salon/temperature")
    assert topic is not None and topic.payload == b"21.5" and topic.count == 200
    assert 8.0 < topics.rate(topic) < 10.5
    clock.now += 60  # quiet for a minute: the rate decays towards zero
    assert topics.rate(topic) < 0.05


def test_numeric_history_at_most_one_point_a_second() -> None:
    topics, clock = tracker()
    for index in range(50):
        topics.observe(Message("t", str(20 + index / 10).encode()))
        clock.now += 0.25
    topic = topics.get("t")
    assert topic is not None and topic.history is not None
    times = [t for t, _ in topic.history]
    assert len(times) == 13 and all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    topics.observe(Message("text", b"ouverte"))
    text = topics.get("text")
    assert text is not None and text.history is None


def test_memory_is_bounded() -> None:
    topics, _ = tracker()
    for index in range(_topics.MAX_TOPICS + 10):
        topics.observe(Message(f"t/{index}", b"x"))
    assert len(list(topics.changed())) == _topics.MAX_TOPICS
    assert topics.get("t/0") is None and topics.get(f"t/{_topics.MAX_TOPICS + 9}") is not None
    big = memoryview(bytes(1 << 20))
    topics.observe(Message("big", big))
    topic = topics.get("big")
    assert topic is not None and type(topic.payload) is bytes
    assert len(topic.payload) == _topics.KEEP_BYTES and topic.size == 1 << 20


def test_changed_since_gives_what_changed_after() -> None:
    topics, _ = tracker()
    for name in ("a", "b", "c"):
        topics.observe(Message(name, b"1"))
    mark = topics.seq
    topics.observe(Message("a", b"2"))
    topics.observe(Message("d", b"3"))
    assert sorted(t.name for t in topics.changed(mark)) == ["a", "d"]
    assert list(topics.changed(topics.seq)) == []
    assert sorted(t.name for t in topics.changed()) == ["a", "b", "c", "d"]


def test_watch_sees_matching_readable_messages_and_drops_the_oldest() -> None:
    topics, _ = tracker()
    watch = topics.watch("maison/#", lambda topic: not topic.endswith("secret"))
    assert watch is not None
    topics.observe(Message("maison/salon", b"1"))
    topics.observe(Message("maison/secret", b"2"))
    topics.observe(Message("jardin", b"3"))
    assert watch.queue.qsize() == 1 and watch.queue.get_nowait()[0] == "maison/salon"
    for index in range(_topics.WATCH_QUEUE + 5):
        topics.observe(Message("maison/x", str(index).encode()))
    assert watch.lost == 5 and watch.queue.get_nowait()[1] == b"5"
    topics.unwatch(watch)
    topics.observe(Message("maison/salon", b"4"))
    assert watch.queue.qsize() == _topics.WATCH_QUEUE - 1


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_number_reads_what_a_sensor_writes(value: float) -> None:
    parsed = number(repr(value).encode())
    assert parsed == (value if math.isfinite(value) else None)


@given(st.binary(max_size=64))
def test_number_never_raises(payload: bytes) -> None:
    parsed = number(payload)
    assert parsed is None or math.isfinite(parsed)


def test_kept_does_not_copy_small_bytes() -> None:
    small = b"21.5"
    assert kept(small) is small
    assert kept(memoryview(small)) == small
