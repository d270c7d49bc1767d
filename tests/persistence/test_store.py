"""The SQLite store inside one process: what waits for a commit, and what a restart restores.

A real event loop and the real writer thread; clients are in memory. A "restart" closes the
store and opens a new broker on the same directory.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from culex.broker import Broker
from culex.config import Config
from culex.persistence import StoreError
from culex.persistence._sqlite import ANSWER_WAIT, LINGER_OFF_BATCHES, SqliteStore
from culex.protocol import (
    ConnAck,
    Connect,
    Disconnect,
    Properties,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    Subscribe,
    SubscriptionRequest,
    Will,
)

from support import WAIT, MemoryClient


class Harness:
    """A broker with a SQLite store on a real loop, stepped by the test."""

    def __init__(self, directory: Path, durability: str = "full",
                 wall_now: float | None = None, answer_wait: float = ANSWER_WAIT,
                 **options: object) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = SqliteStore(directory, durability, autosave_interval=3600,
                                 answer_wait=answer_wait)
        snapshot = self.store.load()
        config = Config(**options)  # type: ignore[arg-type]
        self.broker = Broker(config, self.loop, store=self.store)
        self.store.start(self.loop, self.broker.counters)
        self.broker.restore(snapshot, time.time() if wall_now is None else wall_now)

    def client(self, client_id: str, version: int = 4, clean: bool = True,
               **connect: object) -> MemoryClient:
        client = MemoryClient(self.broker, version)
        client.send(Connect(client_id, version, clean_start=clean, **connect))  # type: ignore
        self.commit()
        ack = client.received()
        assert isinstance(ack[0], ConnAck) and ack[0].reason_code == 0, ack
        client.backlog = ack[1:]
        return client

    def commit(self) -> None:
        self.loop.run_until_complete(self.store.flush())

    def run_until(self, done: Callable[[], bool]) -> None:
        """Run the loop, without asking for a commit, until ``done()``."""
        async def wait() -> None:
            while not done():
                await asyncio.sleep(0.001)

        self.loop.run_until_complete(asyncio.wait_for(wait(), WAIT))

    def close(self) -> None:
        self.loop.run_until_complete(self.store.close())
        self.loop.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.close()


def rows(directory: Path, table: str) -> int:
    with sqlite3.connect(directory / "culex.db") as db:
        count: int = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return count


def offline_subscriber(h: Harness, client_id: str, *filters: tuple[str, int],
                       version: int = 4, **connect: object) -> None:
    sub = h.client(client_id, version, clean=False, **connect)
    sub.send(Subscribe(1, [SubscriptionRequest(f, q) for f, q in filters]))
    h.commit()
    assert isinstance(sub.received()[-1], SubAck)
    sub.send(Disconnect())
    h.commit()


def test_puback_waits_until_the_message_is_on_disk(harness: Harness, tmp_path: Path) -> None:
    offline_subscriber(harness, "sub", ("t", 1))
    pub = harness.client("pub")
    pub.send(Publish("t", b"m", qos=1, packet_id=7))
    assert pub.received() == []  # MQTT 4.3.2: acknowledged means stored
    assert rows(tmp_path, "deliveries") == 0
    harness.commit()
    assert pub.received() == [PubAck(7)]
    assert rows(tmp_path, "deliveries") == 1 and rows(tmp_path, "messages") == 1


def test_pubrec_and_pubcomp_wait_for_the_disk(harness: Harness) -> None:
    offline_subscriber(harness, "sub", ("t", 2))
    pub = harness.client("pub", clean=False)
    pub.send(Publish("t", b"m", qos=2, packet_id=3))
    assert pub.received() == []
    harness.commit()
    assert pub.received() == [PubRec(3)]
    pub.send(PubRel(3))
    assert pub.received() == []  # the awaited id must be gone from disk first
    harness.commit()
    assert pub.received() == [PubComp(3)]


def test_acknowledgements_do_not_wait_when_nothing_is_stored(harness: Harness) -> None:
    live = harness.client("live")  # a clean session: nothing of it is stored
    live.send(Subscribe(1, [SubscriptionRequest("t", 1)]))
    assert isinstance(live.received()[0], SubAck)
    pub = harness.client("pub")
    pub.send(Publish("t", b"m", qos=1, packet_id=1))
    assert pub.received() == [PubAck(1)]
    assert [p.payload for p in live.received() if isinstance(p, Publish)] == [b"m"]


def test_writes_after_a_held_reply_keep_their_order(harness: Harness) -> None:
    offline_subscriber(harness, "sub", ("stored", 1))
    pub = harness.client("pub")
    pub.send(Publish("stored", b"1", qos=1, packet_id=1),
             Publish("other", b"2", qos=1, packet_id=2))
    assert pub.received() == []  # the second PUBACK may not overtake the first
    harness.commit()
    assert pub.received() == [PubAck(1, 0x00), PubAck(2, 0x00)]


def test_periodic_durability_acknowledges_at_once(tmp_path: Path) -> None:
    h = Harness(tmp_path, durability="periodic")
    try:
        offline_subscriber(h, "sub", ("t", 1))
        pub = h.client("pub")
        pub.send(Publish("t", b"m", qos=1, packet_id=1))
        assert pub.received() == [PubAck(1)]
        assert rows(tmp_path, "deliveries") == 0  # written later, every autosave_interval
        h.commit()
        assert rows(tmp_path, "deliveries") == 1
    finally:
        h.close()


def test_a_message_for_many_sessions_is_stored_once(harness: Harness, tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        offline_subscriber(harness, name, ("t", 1))
    pub = harness.client("pub")
    pub.send(Publish("t", b"x" * 1000, qos=1, packet_id=1))
    harness.commit()
    assert rows(tmp_path, "messages") == 1 and rows(tmp_path, "deliveries") == 3
    for name in ("a", "b", "c"):
        sub = harness.client(name, clean=False)
        (publish,) = sub.received()
        assert isinstance(publish, Publish)
        sub.send(PubAck(publish.packet_id))
    harness.commit()
    assert rows(tmp_path, "messages") == 0 and rows(tmp_path, "deliveries") == 0


def test_restart_restores_sessions_queues_and_retained(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    props = Properties(user_properties=[("k", "v"), ("k", "w")], content_type="text/plain")
    offline_subscriber(h, "sub", ("q/1", 1), ("q/2", 2), ("$share/g/s", 1), version=5,
                       properties=Properties(session_expiry_interval=3600))
    pub = h.client("pub", 5)
    for i in range(5):
        pub.send(Publish(f"q/{i % 2 + 1}", f"m{i}".encode(), qos=i % 2 + 1, packet_id=i + 1,
                         properties=props))
    pub.send(Publish("s", b"shared", qos=1, packet_id=9),
             Publish("keep/me", b"retained", qos=1, retain=True, packet_id=10))
    h.commit()
    assert len(pub.received()) == 7
    h.close()

    h = Harness(tmp_path)
    try:
        sub = h.client("sub", 5, clean=False, properties=Properties(session_expiry_interval=3600))
        got = [p for p in sub.received() if isinstance(p, Publish)]
        assert [(p.topic, p.payload, p.qos) for p in got] == [
            ("q/1", b"m0", 1), ("q/2", b"m1", 2), ("q/1", b"m2", 1), ("q/2", b"m3", 2),
            ("q/1", b"m4", 1), ("s", b"shared", 1)]
        assert got[0].properties.user_properties == [("k", "v"), ("k", "w")]
        assert got[0].properties.content_type == "text/plain"
        # Subscriptions survived: a new message still reaches the session.
        h.client("pub2").send(Publish("q/1", b"after", qos=0))
        assert [p.payload for p in sub.received() if isinstance(p, Publish)] == [b"after"]
        reader = h.client("reader")
        reader.send(Subscribe(1, [SubscriptionRequest("keep/#", 1)]))
        h.commit()
        retained = [p for p in reader.received() if isinstance(p, Publish)]
        assert [(p.topic, p.payload, p.retain) for p in retained] == [
            ("keep/me", b"retained", True)]
    finally:
        h.close()


def test_queued_messages_keep_their_subscription_identifiers_and_retain_flag(
        tmp_path: Path) -> None:
    h = Harness(tmp_path)
    expiry = Properties(session_expiry_interval=3600)
    sub = h.client("sub", 5, clean=False, properties=expiry)
    sub.send(Subscribe(1, [SubscriptionRequest("q/#", 1, retain_as_published=True)],
                       Properties(subscription_identifiers=[7])),
             Subscribe(2, [SubscriptionRequest("o/plain", 1)]))
    h.commit()
    sub.send(Disconnect())
    h.commit()
    pub = h.client("pub")
    pub.send(Publish("q/kept", b"r", qos=1, retain=True, packet_id=1),
             Publish("o/plain", b"p", qos=1, packet_id=2))
    h.commit()
    h.close()

    h = Harness(tmp_path)
    try:
        sub = h.client("sub", 5, clean=False, properties=expiry)
        got = sorted(((p.topic, p.retain, sorted(p.properties.subscription_identifiers))
                      for p in sub.received() if isinstance(p, Publish)), key=str)
        # MQTT-3.3.4-3: the matching subscription's identifier; the plain one has none.
        assert got == [("o/plain", False, []), ("q/kept", True, [7])]
    finally:
        h.close()


def test_in_flight_messages_are_resent_with_their_packet_ids(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    sub = h.client("sub", clean=False)
    sub.send(Subscribe(1, [SubscriptionRequest("t", 2)]))
    h.commit()
    sub.received()
    pub = h.client("pub")
    pub.send(Publish("t", b"one", qos=2, packet_id=1), Publish("t", b"two", qos=2, packet_id=2))
    h.commit()
    first, second = [p for p in sub.received() if isinstance(p, Publish)]
    sub.send(PubRec(first.packet_id))  # the first goes on to PUBREL; the second is unanswered
    h.commit()
    assert sub.received() == [PubRel(first.packet_id)]
    h.close()  # a stop with the client still connected

    h = Harness(tmp_path)
    try:
        sub = h.client("sub", clean=False)
        # MQTT-4.4.0-1: the PUBREL again, then the PUBLISH again with DUP and the same id.
        assert sub.received() == [PubRel(first.packet_id),
                                  Publish("t", b"two", qos=2, dup=True,
                                          packet_id=second.packet_id)]
    finally:
        h.close()


def test_an_awaited_pubrel_survives_a_restart(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    offline_subscriber(h, "sub", ("t", 2))
    pub = h.client("pub", clean=False)
    pub.send(Publish("t", b"once", qos=2, packet_id=5))
    h.commit()
    assert pub.received() == [PubRec(5)]
    h.close()  # the publisher never got to send its PUBREL

    h = Harness(tmp_path)
    try:
        pub = h.client("pub", clean=False)
        pub.send(Publish("t", b"once", qos=2, dup=True, packet_id=5))  # MQTT-4.3.3-10
        h.commit()
        assert pub.received() == [PubRec(5)]
        pub.send(PubRel(5))
        h.commit()
        assert pub.received() == [PubComp(5)]
        sub = h.client("sub", clean=False)
        assert [p.payload for p in sub.received() if isinstance(p, Publish)] == [b"once"]
    finally:
        h.close()


def test_a_clean_start_removes_the_stored_session(harness: Harness, tmp_path: Path) -> None:
    offline_subscriber(harness, "sub", ("t", 1))
    harness.client("pub").send(Publish("t", b"m", qos=1, packet_id=1))
    harness.commit()
    assert rows(tmp_path, "sessions") == 2 - 1  # "pub" is a clean session: not stored
    harness.client("sub", clean=True)
    harness.commit()
    for table in ("sessions", "subscriptions", "deliveries", "messages"):
        assert rows(tmp_path, table) == 0, table


def test_time_spent_stopped_counts_towards_expiry(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    offline_subscriber(h, "short", ("t", 1), version=5,
                       properties=Properties(session_expiry_interval=60))
    offline_subscriber(h, "long", ("t", 1), version=5,
                       properties=Properties(session_expiry_interval=7200))
    h.close()
    h = Harness(tmp_path, wall_now=time.time() + 3600)  # as if stopped for an hour
    try:
        assert sorted(h.broker.sessions) == ["long"]
        h.commit()
        assert rows(tmp_path, "sessions") == 1
    finally:
        h.close()


def test_message_expiry_counts_the_time_stopped(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    offline_subscriber(h, "sub", ("t/#", 1))
    pub = h.client("pub", 5)
    pub.send(Publish("t/short", b"s", qos=1, packet_id=1,
                     properties=Properties(message_expiry_interval=60)),
             Publish("t/long", b"l", qos=1, packet_id=2,
                     properties=Properties(message_expiry_interval=7200)))
    h.commit()
    h.close()
    h = Harness(tmp_path, wall_now=time.time() + 3600)
    try:
        sub = h.client("sub", 5, clean=False)
        (publish,) = [p for p in sub.received() if isinstance(p, Publish)]
        assert publish.payload == b"l"  # MQTT-3.3.2-5: the other one expired meanwhile
        # MQTT-3.3.2-6: what is left of the interval, less the hour spent stopped.
        interval = publish.properties.message_expiry_interval
        assert interval is not None and 3590 <= interval <= 3600
    finally:
        h.close()


def test_a_delayed_will_is_published_after_a_restart(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    offline_subscriber(h, "watcher", ("wills/#", 1))
    will = Will("wills/dev", b"gone", qos=1, properties=Properties(will_delay_interval=30))
    dev = h.client("dev", 5, properties=Properties(session_expiry_interval=3600), will=will)
    dev.drop()  # no DISCONNECT: the will is due in 30 s
    h.commit()
    h.close()
    h = Harness(tmp_path, wall_now=time.time() + 60)
    try:
        watcher = h.client("watcher", clean=False)
        assert [p.payload for p in watcher.received() if isinstance(p, Publish)] == [b"gone"]
    finally:
        h.close()


# -- damaged stores ---------------------------------------------------------------------------


def _damaged_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="culex"):
        h = Harness(tmp_path)
    try:
        assert h.broker.sessions == {}
        assert "is damaged" in caplog.text and "starts with an empty store" in caplog.text
        assert list(tmp_path.glob("culex.db.damaged-*")), "the damaged file is kept aside"
        offline_subscriber(h, "new", ("t", 1))  # and the new store works
    finally:
        h.close()


def _filled_store(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    offline_subscriber(h, "sub", ("t", 1))
    pub = h.client("pub")
    for i in range(200):
        pub.send(Publish("t", bytes(500), qos=1, packet_id=i % 60000 + 1))
    h.commit()
    h.close()


def test_a_file_that_is_not_a_database_is_set_aside(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "culex.db").write_bytes(b"this is not SQLite" * 100)
    _damaged_start(tmp_path, caplog)


def test_a_truncated_database_is_set_aside(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    _filled_store(tmp_path)
    path = tmp_path / "culex.db"
    data = path.read_bytes()
    assert len(data) > 8192
    path.write_bytes(data[:len(data) // 2])
    _damaged_start(tmp_path, caplog)


def test_a_corrupted_page_is_found(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _filled_store(tmp_path)
    path = tmp_path / "culex.db"
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(page, len(data), page):  # every page but the header's
        data[offset:offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    _damaged_start(tmp_path, caplog)


def test_a_database_of_another_program_is_set_aside(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with sqlite3.connect(tmp_path / "culex.db") as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    _damaged_start(tmp_path, caplog)


def test_bad_values_in_a_valid_file_are_damage(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    _filled_store(tmp_path)
    with sqlite3.connect(tmp_path / "culex.db") as db:
        db.execute("UPDATE subscriptions SET topic_filter = 'a/#/b'")
    _damaged_start(tmp_path, caplog)


def test_a_data_directory_in_use_is_refused(harness: Harness, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="in use by another culex process"):
        SqliteStore(tmp_path).load()


class FailingDatabase:
    """The store's connection, refusing the first ``failures`` commits as a full disk would."""

    def __init__(self, db: sqlite3.Connection, failures: int) -> None:
        self._db = db
        self.failures = failures

    def execute(self, sql: str, *args: object) -> object:
        if sql == "COMMIT" and self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._db, name)


def test_a_failing_disk_holds_acknowledgements_until_a_write_succeeds(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = Harness(tmp_path)
    try:
        offline_subscriber(h, "sub", ("t", 1))
        assert h.store.file.db is not None
        failing = FailingDatabase(h.store.file.db, failures=2)
        h.store.file.db = failing  # type: ignore[assignment]
        pub = h.client("pub")
        with caplog.at_level(logging.ERROR, logger="culex"):
            pub.send(Publish("t", b"m", qos=1, packet_id=1))
            h.loop.run_until_complete(asyncio.sleep(0))  # the batch goes to the writer
            assert pub.received() == []  # not on disk: not acknowledged
            h.commit()  # returns once a write has gone through, after the retries
        assert failing.failures == 0 and "database or disk is full" in caplog.text
        assert pub.received() == [PubAck(1)]
        assert rows(tmp_path, "deliveries") == 1
    finally:
        h.close()


def test_the_file_is_created_by_the_first_write(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    try:
        live = h.client("live")  # clean sessions and QoS 0: nothing to store
        live.send(Subscribe(1, [SubscriptionRequest("t", 1)]))
        h.client("pub").send(Publish("t", b"m"))
        h.commit()
        assert not (tmp_path / "culex.db").exists() and h.store.file.db is None
        offline_subscriber(h, "sub", ("t", 1))  # its CONNACK waited for the new file
        assert (tmp_path / "culex.db").stat().st_mode & 0o777 == 0o600
        assert rows(tmp_path, "subscriptions") == 1
    finally:
        h.close()
    h = Harness(tmp_path)
    try:
        assert "sub" in h.broker.sessions
    finally:
        h.close()


def test_a_file_that_cannot_be_created_is_retried_and_acknowledgements_wait(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = Harness(tmp_path)
    real = h.store.file.create
    failures = [OSError(28, "No space left on device")]

    def failing_create() -> None:
        if failures:
            raise failures.pop()
        real()

    h.store.file.create = failing_create  # type: ignore[method-assign]
    try:
        client = MemoryClient(h.broker, 4)
        with caplog.at_level(logging.ERROR, logger="culex"):
            client.send(Connect("sub", 4, clean_start=False))
            h.loop.run_until_complete(asyncio.sleep(0))
            assert client.received() == []  # the session is not on disk yet
            h.commit()  # tries again: creates the file, writes, returns once written
        assert "cannot create the store" in caplog.text and "retrying" in caplog.text
        assert isinstance(client.received()[0], ConnAck)
        assert rows(tmp_path, "sessions") == 1
    finally:
        h.close()


def test_a_stop_that_cannot_create_the_file_says_what_is_lost(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = Harness(tmp_path, durability="periodic")  # the change waits for the stop
    client = MemoryClient(h.broker, 4)
    client.send(Connect("sub", 4, clean_start=False))
    assert isinstance(client.received()[0], ConnAck)  # periodic: not held

    def failing_create() -> None:
        raise OSError(28, "No space left on device")

    h.store.file.create = failing_create  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="culex"):
        h.close()  # returns: a stop does not wait for a disk that refuses
    assert "what was to be stored since the start is lost" in caplog.text
    assert not (tmp_path / "culex.db").exists()


def test_lingering_stops_when_clients_are_slow_to_acknowledge(tmp_path: Path) -> None:
    """A batch of QoS 1 messages in flight waits a little for their acknowledgements; when
    they do not come, the store stops waiting for a while, so that slow subscribers do not
    delay their publishers' acknowledgements."""
    h = Harness(tmp_path)
    try:
        sub = h.client("sub", clean=False)
        sub.send(Subscribe(1, [SubscriptionRequest("t", 1)]))
        h.commit()
        sub.received()
        pub = h.client("pub")
        written = asyncio.Event()
        write = pub.sink.write

        def noticed_write(data: bytes) -> None:
            write(data)
            written.set()

        pub.sink.write = noticed_write  # type: ignore[method-assign]
        pub.send(Publish("t", b"1", qos=1, packet_id=1))  # the subscriber never acknowledges
        h.loop.run_until_complete(asyncio.wait_for(written.wait(), WAIT))
        assert pub.received() == [PubAck(1)]
        assert h.store._linger_off == LINGER_OFF_BATCHES  # it did not pay: off for a while
        assert rows(tmp_path, "deliveries") == 1
    finally:
        h.close()


def _online_subscriber(h: Harness) -> MemoryClient:
    sub = h.client("sub", clean=False)
    sub.send(Subscribe(1, [SubscriptionRequest("t", 1)]))
    h.commit()
    assert isinstance(sub.received()[-1], SubAck)
    return sub


def test_an_acknowledged_message_releases_its_puback_without_a_commit(tmp_path: Path) -> None:
    """MQTT 4.3.2: once every persistent session it was for has acknowledged a QoS 1 message,
    the broker owns nothing more of it: its publisher is acknowledged without a write."""
    h = Harness(tmp_path)
    try:
        sub = _online_subscriber(h)
        pub = h.client("pub")
        commits = h.broker.counters.commits
        # Always one message in flight beside the one acknowledged, as under a steady load:
        # each is released by its own acknowledgement, not by the others'.
        pub.send(Publish("t", b"1", qos=1, packet_id=1))
        h.loop.run_until_complete(asyncio.sleep(0))  # its batch lingers
        unacknowledged = [p.packet_id for p in sub.received()]  # type: ignore[attr-defined]
        for packet_id in (2, 3, 4):
            pub.send(Publish("t", b"m", qos=1, packet_id=packet_id))
            h.loop.run_until_complete(asyncio.sleep(0))
            unacknowledged += [p.packet_id for p in sub.received()]  # type: ignore[attr-defined]
            assert pub.received() == []  # neither on disk nor acknowledged yet
            sub.send(PubAck(unacknowledged.pop(0)))
            assert pub.received() == [PubAck(packet_id - 1)]
        sub.send(PubAck(unacknowledged.pop(0)))
        assert pub.received() == [PubAck(4)]
        assert h.broker.counters.commits == commits
        h.commit()
        assert rows(tmp_path, "deliveries") == 0 and rows(tmp_path, "messages") == 0
    finally:
        h.close()


def test_lingering_acknowledgements_keep_their_order(tmp_path: Path) -> None:
    """PUBACKs in the order of the PUBLISHes (MQTT 4.6), though the subscriber acknowledges
    the second message first; the first, never acknowledged, is written after LINGER."""
    h = Harness(tmp_path)
    try:
        sub = _online_subscriber(h)
        pub = h.client("pub")
        for packet_id in (1, 2):
            pub.send(Publish("t", str(packet_id).encode(), qos=1, packet_id=packet_id))
            h.loop.run_until_complete(asyncio.sleep(0))  # a lingering batch each
        first, second = sub.received()
        sub.send(PubAck(second.packet_id))  # type: ignore[attr-defined]
        h.loop.run_until_complete(asyncio.sleep(0))
        assert pub.received() == []  # the first message is neither acknowledged nor written
        got: list[object] = []
        h.run_until(lambda: bool(got.extend(pub.received()) or got))
        assert got == [PubAck(1), PubAck(2)]  # once the first was written
        assert rows(tmp_path, "deliveries") == 1
        sub.send(PubAck(first.packet_id))  # type: ignore[attr-defined]
        h.commit()
        assert rows(tmp_path, "deliveries") == 0  # its row is deleted once acknowledged
    finally:
        h.close()


def test_a_change_made_while_a_commit_is_written_goes_into_the_next(harness: Harness) -> None:
    offline_subscriber(harness, "sub", ("t", 1))
    pub = harness.client("pub")
    pub.send(Publish("t", b"1", qos=1, packet_id=1))
    harness.loop.run_until_complete(asyncio.sleep(0))  # the first batch goes to the writer
    # Its completion cannot be handled before the loop runs again: this one waits for the next.
    pub.send(Publish("t", b"2", qos=1, packet_id=2))
    harness.commit()  # both; the first's completion hands the second over
    assert pub.received() == [PubAck(1), PubAck(2)]


def test_the_next_commit_waits_for_the_clients_the_last_one_answered(tmp_path: Path) -> None:
    # A QoS 2 exchange between two persistent sessions, both online: each step needs a commit.
    # The answers are waited for longer than the test takes (not 1 ms): they come when it says.
    harness = Harness(tmp_path, answer_wait=10 * WAIT)
    try:
        _two_answers_one_commit(harness)
    finally:
        harness.close()


def _two_answers_one_commit(harness: Harness) -> None:
    sub = harness.client("sub", clean=False)
    sub.send(Subscribe(1, [SubscriptionRequest("t", 2)]))
    harness.commit()
    assert isinstance(sub.received()[-1], SubAck)
    pub = harness.client("pub", clean=False)
    pub.send(Publish("t", b"m", qos=2, packet_id=5))
    pub_got: list[object] = []
    sub_got: list[object] = []
    harness.run_until(lambda: bool(pub_got.extend(pub.received()) or pub_got)
                      and bool(sub_got.extend(sub.received()) or sub_got))
    assert pub_got == [PubRec(5)]  # this commit released both
    [publish] = sub_got
    assert isinstance(publish, Publish) and publish.packet_id
    commits = harness.broker.counters.commits
    # Both answer, one after the other (separate reads); what each answer changed goes to
    # disk in one commit, not in two.
    pub.send(PubRel(5))
    harness.loop.run_until_complete(asyncio.sleep(0))
    sub.send(PubRec(publish.packet_id))
    harness.run_until(lambda: bool(pub_got.extend(pub.received()) or len(pub_got) > 1)
                      and bool(sub_got.extend(sub.received()) or len(sub_got) > 1))
    assert pub_got[1:] == [PubComp(5)] and sub_got[1:] == [PubRel(publish.packet_id)]
    assert harness.broker.counters.commits == commits + 1


def test_a_client_that_does_not_answer_delays_the_next_commit_only_briefly(
        harness: Harness) -> None:
    sub = harness.client("sub", clean=False)
    sub.send(Subscribe(1, [SubscriptionRequest("t", 2)]))
    harness.commit()
    assert isinstance(sub.received()[-1], SubAck)
    pub = harness.client("pub")
    pub.send(Publish("t", b"1", qos=2, packet_id=1))
    got: list[object] = []
    harness.run_until(lambda: bool(got.extend(sub.received()) or got))
    assert isinstance(got[0], Publish)  # released by a commit: the store waits for its PUBREC
    other = harness.client("other")  # ... which does not come; another client publishes
    other.send(Publish("t", b"2", qos=1, packet_id=2))
    acks: list[object] = []
    harness.run_until(lambda: bool(acks.extend(other.received()) or acks))
    assert acks == [PubAck(2)]  # written when the wait for the quiet one ran out


def test_a_client_without_a_persistent_session_is_not_waited_for(tmp_path: Path) -> None:
    # What it would answer (here, its next PUBLISH) is waited for longer than the test takes,
    # if it is waited for at all.
    harness = Harness(tmp_path, answer_wait=10 * WAIT)
    try:
        offline_subscriber(harness, "sub", ("t", 1))
        pub = harness.client("pub")  # a clean session
        pub.send(Publish("t", b"1", qos=1, packet_id=1))
        got: list[object] = []
        harness.run_until(lambda: bool(got.extend(pub.received()) or got))
        assert got == [PubAck(1)]
        other = harness.client("other")
        other.send(Publish("t", b"2", qos=1, packet_id=2))
        acks: list[object] = []
        harness.run_until(lambda: bool(acks.extend(other.received()) or acks))
        assert acks == [PubAck(2)]
    finally:
        harness.close()
