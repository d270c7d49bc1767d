"""The counting seam: what the broker counts, read through ``Counters.snapshot()``.

Each count is driven by real traffic (in-memory clients on a sans-IO broker, the SQLite store on
a real loop, real TCP sockets on an in-process server) and read back from the snapshot, the one
function the $SYS, Prometheus and dashboard observers will read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from pathlib import Path

from culex.app import Server
from culex.auth import Action, AuthChain, ClientInfo, Verdict
from culex.broker import Broker
from culex.config import Config, ListenerConfig
from culex.observability import Counters
from culex.persistence._sqlite import SqliteStore
from culex.protocol import (
    Connect,
    Disconnect,
    PingReq,
    Properties,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    ReasonCode,
    Subscribe,
    SubscriptionRequest,
)

from support import WAIT, FakeScheduler, MemoryClient, make_broker


def connected(broker: Broker, client_id: str, version: int = 4,
              **connect: object) -> MemoryClient:
    client = MemoryClient(broker, version)
    client.send(Connect(client_id, version, **connect))  # type: ignore[arg-type]
    client.received()
    return client


def test_messages_packets_and_bytes_by_qos() -> None:
    broker, _ = make_broker()
    sub = connected(broker, "sub")
    sub.send(Subscribe(1, [SubscriptionRequest("t", 2)]))
    pub = connected(broker, "pub")
    pub.send(Publish("t", b"zero"), Publish("t", b"one", qos=1, packet_id=1),
             Publish("t", b"two!", qos=2, packet_id=2))
    pub.send(PubRel(2))
    sub.received()
    sub.send(PubAck(1), PubRec(2))
    sub.send(PubComp(2))
    snap = broker.counters.snapshot()
    assert snap["messages"]["received"] == {0: 1, 1: 1, 2: 1}
    assert snap["messages"]["sent"] == {0: 1, 1: 1, 2: 1}
    assert snap["publish_bytes"] == {"received": 11, "sent": 11}
    # in: 2 CONNECT, SUBSCRIBE, 3 PUBLISH, PUBREL, PUBACK, PUBREC, PUBCOMP
    # out: 2 CONNACK, SUBACK, PUBACK, PUBREC, PUBCOMP, 3 PUBLISH, PUBREL
    assert snap["packets"] == {"received": 10, "sent": 10}
    assert snap["bytes"]["received"] > 0  # the wire bytes sent are the transport's to count
    assert snap["dropped"]["no_subscribers"] == 0


def test_drops_by_reason() -> None:
    class NoSecrets:
        def authorize(self, client: ClientInfo, action: Action, topic: str) -> Verdict:
            return Verdict.DENY if topic.startswith("secret") else Verdict.ALLOW

    scheduler = FakeScheduler()
    config = Config(message_size_limit=10, max_queued_messages=1)
    config.validate()
    broker = Broker(config, scheduler, AuthChain(authorizers=[NoSecrets()]))
    offline = connected(broker, "offline", 5,
                        properties=Properties(session_expiry_interval=600))
    offline.send(Subscribe(1, [SubscriptionRequest("q/#", 1)]), Disconnect())
    pub = connected(broker, "pub", 5)
    pub.send(Publish("nobody/listens", b"x"),
             Publish("secret/plans", b"x", qos=1, packet_id=1),
             Publish("q/big", b"x" * 11, qos=1, packet_id=2),
             Publish("q/a", b"kept", qos=1, packet_id=3,
                     properties=Properties(message_expiry_interval=5)),
             Publish("q/b", b"no room", qos=1, packet_id=4))
    assert [p.reason_code for p in pub.received()] == [  # type: ignore[attr-defined]
        ReasonCode.NOT_AUTHORIZED, ReasonCode.QUOTA_EXCEEDED, 0, 0]
    scheduler.advance(10)  # the queued message expires before its client is back
    connected(broker, "offline", 5, clean_start=False,
              properties=Properties(session_expiry_interval=600))
    assert broker.counters.snapshot()["dropped"] == {
        "queue_full": 1, "too_large": 1, "expired": 1, "no_subscribers": 1,
        "not_authorized": 1}


def test_connections_refused_and_closed_by_reason_and_authentication() -> None:
    broker, scheduler = make_broker(allow_anonymous=False, max_keepalive=60)
    MemoryClient(broker).send(Connect("anonymous", 4))  # refused: not authorized
    MemoryClient(broker).send_raw(b"\x30\x00")  # not a CONNECT first
    MemoryClient(broker)  # never says anything
    snap = broker.counters.snapshot()
    assert snap["connections"]["refused"]["not_authorized"] == 1
    assert snap["connections"]["refused"]["protocol_error"] == 1
    assert snap["auth"] == {"successes": 0, "failures": 1, "throttled": 0}
    scheduler.advance(broker.config.connect_timeout + 1)
    assert broker.counters.refused["timeout"] == 1

    broker, scheduler = make_broker()
    connected(broker, "a", keep_alive=1)
    connected(broker, "a")  # takes the session over
    connected(broker, "b").send(Disconnect())
    connected(broker, "d").send_raw(b"\xf0\x00")  # reserved packet type
    connected(broker, "e", keep_alive=1)
    scheduler.advance(2)  # e's keep-alive runs out
    connected(broker, "f").drop()
    closed = broker.counters.snapshot()["connections"]["closed"]
    assert {reason: n for reason, n in closed.items() if n} == {
        "taken_over": 1, "client": 1, "protocol_error": 1, "keep_alive": 1, "lost": 1}
    assert broker.counters.auth_successes == 6


def test_snapshot_is_plain_data_and_a_copy() -> None:
    counters = Counters()
    snap = counters.snapshot()
    json.dumps(snap)  # plain data: every observer can serialize it
    snap["dropped"]["queue_full"] = 99
    snap["messages"]["received"][0] = 99
    assert counters.dropped["queue_full"] == 0 and counters.messages_received[0] == 0


def test_store_commits_and_their_duration(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    counters = Counters()
    store = SqliteStore(tmp_path)
    snapshot = store.load()
    broker = Broker(Config(), loop, store=store, counters=counters)
    store.start(loop, counters)
    broker.restore(snapshot, time.time())
    try:
        client = MemoryClient(broker)
        client.send(Connect("persistent", 4, clean_start=False))
        loop.run_until_complete(store.flush())
        commits = counters.snapshot()["store"]
        assert commits["commits"] >= 1 and commits["commit_seconds"] > 0
        buckets = commits["commit_buckets"]
        assert buckets[-1] == (float("inf"), commits["commits"])  # cumulative, like Prometheus
        assert [count for _, count in buckets] == sorted(count for _, count in buckets)
    finally:
        loop.run_until_complete(store.close())
        loop.close()


def test_wire_bytes_and_connections_through_the_tcp_transport() -> None:
    async def scenario() -> None:
        config = Config(listeners=[ListenerConfig(port=0)], max_connections=1,
                        persistence=False)
        config.validate()
        server = Server(config)
        [(host, port)] = await server.start()
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(Connect("wire", 4).encode(4))
            assert await asyncio.wait_for(reader.readexactly(4), WAIT) == b"\x20\x02\x00\x00"
            # A second connection is one too many: refused and counted.
            second = socket.create_connection((host, port))
            second.settimeout(WAIT)
            # The broker hangs up at once: an end of stream, or a reset.
            with contextlib.suppress(ConnectionResetError):
                assert await asyncio.get_running_loop().run_in_executor(None, second.recv, 1) \
                    == b""
            second.close()
            writer.write(PingReq().encode(4))
            assert await asyncio.wait_for(reader.readexactly(2), WAIT) == b"\xd0\x00"
            snap = server.counters.snapshot()
            assert snap["bytes"] == {"received": len(Connect("wire", 4).encode(4)) + 2,
                                     "sent": 6}
            assert snap["connections"]["opened"] == 1
            assert snap["connections"]["refused"]["max_connections"] == 1
            writer.close()
        finally:
            await server.shutdown()

    asyncio.run(scenario())


def test_gauges_follow_what_the_broker_holds() -> None:
    broker, scheduler = make_broker(max_inflight_messages=1)
    online = connected(broker, "online")
    online.send(Subscribe(1, [SubscriptionRequest("g/#", 1),
                              SubscriptionRequest("$share/grp/g/x", 1)]))
    offline = connected(broker, "offline", 5,
                        properties=Properties(session_expiry_interval=2))
    offline.send(Subscribe(1, [SubscriptionRequest("g/#", 1)]), Disconnect())
    publisher = connected(broker, "publisher")
    publisher.send(Publish("g/r", b"12345", retain=True),
                   Publish("g/r", b"123", retain=True),  # replaces: 3 bytes, not 8
                   Publish("g/s", b"xy", retain=True),
                   Publish("g/x", b"1", qos=1, packet_id=1),
                   Publish("g/x", b"2", qos=1, packet_id=2))
    gauges = broker.gauges()
    assert (gauges.connected, gauges.connected_peak, gauges.sessions) == (2, 2, 3)
    assert (gauges.subscriptions, gauges.shared_subscriptions) == (3, 1)
    assert (gauges.retained_messages, gauges.retained_bytes) == (2, 5)
    # "online" gets each QoS 1 message twice (g/# and the shared subscription): one in
    # flight (window 1), three queued; "offline" queues both (QoS 0 ones are not queued).
    assert gauges.inflight_messages == 1
    assert (gauges.queued_messages, gauges.queued_bytes) == (5, 5)
    publisher.send(Publish("g/s", b"", retain=True))  # deleted
    assert (broker.gauges().retained_messages, broker.gauges().retained_bytes) == (1, 3)
    scheduler.advance(3)  # the offline session expires
    assert broker.gauges().sessions == 2
    assert broker.counters.sessions_expired == 1
    assert broker.counters.connections_accepted == 3
