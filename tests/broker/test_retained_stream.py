"""A new subscription's retained messages go out as the client reads them (issue: a
subscription to "#" on 100,000 retained messages), ahead of live messages, which wait behind
them so that a retained value never arrives after a newer one."""

from __future__ import annotations

from culex.broker import Connection
from culex.protocol import Connect, Properties, PubAck, Publish, Subscribe, SubscriptionRequest

from support import MemoryClient, MemorySink, make_broker

COUNT = 2000


class SlowSink(MemorySink):
    """A transport whose buffer counts as full past ``limit`` unread bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.unread = 0
        self.conn: Connection | None = None

    def write(self, data: bytes) -> None:
        super().write(data)
        self.unread += len(data)
        if self.conn is not None and self.unread > self.limit and not self.conn.paused:
            self.conn.pause_writing()

    def drain(self) -> None:
        """The client read everything: the transport's buffer is empty again."""
        self.unread = 0
        assert self.conn is not None
        if self.conn.paused:
            self.conn.resume_writing()


def slow_subscriber(broker: object, version: int, client_id: str,
                    **connect: object) -> tuple[MemoryClient, SlowSink]:
    sink = SlowSink(4096)
    client = MemoryClient(broker, version, sink=sink)  # type: ignore[arg-type]
    sink.conn = client.conn
    client.send(Connect(client_id, version, **connect))  # type: ignore[arg-type]
    client.received()
    return client, sink


def load(broker: object, qos: int = 0) -> MemoryClient:
    loader = MemoryClient(broker)  # type: ignore[arg-type]
    loader.send(Connect("loader"))
    loader.send(*(Publish(f"r/{i}", f"old {i}".encode(), qos, retain=True,
                          packet_id=i + 1 if qos else 0) for i in range(COUNT)))
    return loader


def publishes(packets: list[object]) -> list[Publish]:
    return [packet for packet in packets if isinstance(packet, Publish)]


def test_retained_messages_go_out_as_the_client_reads() -> None:
    broker, _ = make_broker(max_queued_messages=100)  # the queue limit does not apply to them
    load(broker)
    sub, sink = slow_subscriber(broker, 4, "dashboard")
    sub.send(Subscribe(1, [SubscriptionRequest("r/#")]))
    first = publishes(sub.received())
    assert 0 < len(first) < COUNT // 4  # what the buffer holds, not everything at once
    got = list(first)
    for _ in range(COUNT):
        if len(got) == COUNT:
            break
        sink.drain()
        got += publishes(sub.received())
    assert sorted(p.topic for p in got) == sorted(f"r/{i}" for i in range(COUNT))
    assert all(p.retain for p in got)


def test_live_messages_wait_behind_the_retained_ones() -> None:
    broker, _ = make_broker()
    loader = load(broker)
    sub, sink = slow_subscriber(broker, 4, "dashboard")
    sub.send(Subscribe(1, [SubscriptionRequest("r/#")]))
    got = publishes(sub.received())
    pending = {f"r/{i}" for i in range(COUNT)} - {p.topic for p in got}
    topic = sorted(pending)[0]  # its retained message has not gone out yet
    loader.send(Publish(topic, b"new"))  # live, newer
    while sink.conn is not None and len(got) < COUNT + 1:
        sink.drain()
        more = publishes(sub.received())
        if not more:
            break
        got += more
    values = [p.payload for p in got if p.topic == topic]
    assert values == [f"old {topic[2:]}".encode(), b"new"]  # never the old after the new
    assert got[-1].payload == b"new" and not got[-1].retain
    assert len(got) == COUNT + 1


def test_a_client_gone_mid_stream_finds_the_rest_queued() -> None:
    """MQTT 5 with a session that outlives the connection: the retained QoS 1 messages not
    yet sent are queued, and come first when the client is back."""
    broker, _ = make_broker(max_inflight_messages=COUNT * 2)
    load(broker, qos=1)
    props = Properties(session_expiry_interval=600)
    sub, _ = slow_subscriber(broker, 5, "dashboard", clean_start=True, properties=props)
    sub.send(Subscribe(1, [SubscriptionRequest("r/#", qos=1)]))
    first = publishes(sub.received())
    assert 0 < len(first) < COUNT
    sub.drop()
    back = MemoryClient(broker, 5)  # type: ignore[arg-type]
    back.send(Connect("dashboard", 5, clean_start=False, properties=props))
    rest = publishes(back.received())
    seen = [p.topic for p in first] + [p.topic for p in rest if not p.dup]
    assert sorted(set(seen)) == sorted(f"r/{i}" for i in range(COUNT))
    back.send(*(PubAck(p.packet_id) for p in first + rest))


def test_retained_messages_deleted_mid_stream_are_not_sent() -> None:
    """The walk goes on across turns of the event loop while retained messages change: a
    deleted one is not sent (nor does the walk break), a replaced one goes out as it is now."""
    broker, _ = make_broker()
    loader = load(broker)
    sub, sink = slow_subscriber(broker, 4, "dashboard")
    sub.send(Subscribe(1, [SubscriptionRequest("r/+")]))
    got = publishes(sub.received())
    pending = sorted({f"r/{i}" for i in range(COUNT)} - {p.topic for p in got})
    deleted, replaced = pending[:10], pending[10:20]
    loader.send(*(Publish(topic, b"", retain=True) for topic in deleted))
    loader.send(*(Publish(topic, b"newer", retain=True) for topic in replaced))
    for _ in range(COUNT):
        sink.drain()
        more = publishes(sub.received())
        if not more:
            break
        got += more
    # A deleted one: only the deletion itself, live (an empty payload goes to subscribers as
    # any message, 3.1.1: MQTT-3.3.1-10), queued behind the stream; never its old value.
    assert [(p.payload, p.retain) for p in got if p.topic in deleted] == [(b"", False)] * 10
    # A replaced one: its new value, live, and as it is retained now when the stream reaches
    # it - never the old value.
    assert all(p.payload == b"newer" for p in got if p.topic in replaced)
    assert {p.topic for p in got} == {f"r/{i}" for i in range(COUNT)}
