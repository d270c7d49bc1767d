"""The embedded store: SQLite (stdlib ``sqlite3``) in WAL mode, written by one thread.

Changes are not written one by one. The store keeps, per row, the latest state of what changed
since the last write (a message queued and acknowledged before it was written costs nothing),
and hands the lot to a writer thread as one transaction with one fsync. While that commit runs,
new changes gather into the next one, so the batches grow with the load and the event loop
never waits for the disk.

In ``full`` durability the broker holds back each reply that follows a change (PUBACK, PUBREC,
PUBCOMP, SUBACK, CONNACK, a QoS 2 PUBLISH or PUBREL to a persistent session) until the commit
that contains the change is done: whatever a client was told is on disk. A reply that waited
only for messages which every persistent session has since acknowledged is released without
waiting any longer: those messages need no disk. In ``periodic`` durability changes are
written every ``autosave_interval`` seconds and nothing waits; a crash (not a clean stop) loses
what was acknowledged since the last write.

The file is created when there is first something to write: until then (clean sessions only,
no retained message) neither the file nor ``sqlite3`` is loaded, which spares an idle broker
1.7 MB.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..protocol import (
    NO_PROPERTIES,
    MQTTError,
    PacketType,
    Properties,
    decode_properties,
    is_valid_topic_filter,
    is_valid_topic_name,
    parse_shared,
)
from ._store import (
    EMPTY,
    Snapshot,
    Store,
    StoredDelivery,
    StoredMessage,
    StoredSession,
    StoredSubscription,
    StoredWill,
    StoreError,
)

if TYPE_CHECKING:
    import sqlite3

    from ..broker import Connection, Message, Session, Subscription
    from ..broker._session import Outgoing

log = logging.getLogger("culex")

FILE_NAME = "culex.db"
# How long a batch of QoS 1 messages in flight to connected clients waits for their
# acknowledgements before it is written anyway: a few round trips on a local network.
LINGER = 0.005
# When lingering did not pay (most rows still unacknowledged at its end), how many batches are
# written without it before it is tried again.
LINGER_OFF_BATCHES = 8
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE sessions (
    client_id TEXT PRIMARY KEY, expiry_interval INTEGER NOT NULL, disconnected_at REAL,
    username TEXT, cert_subject TEXT, protocol_version INTEGER NOT NULL,
    will_topic TEXT, will_payload BLOB, will_qos INTEGER, will_retain INTEGER,
    will_properties BLOB, will_delay INTEGER, will_expiry INTEGER);
CREATE TABLE subscriptions (
    client_id TEXT NOT NULL, topic_filter TEXT NOT NULL, qos INTEGER NOT NULL,
    no_local INTEGER NOT NULL, retain_as_published INTEGER NOT NULL,
    retain_handling INTEGER NOT NULL, identifier INTEGER,
    PRIMARY KEY (client_id, topic_filter)) WITHOUT ROWID;
CREATE TABLE messages (
    id INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL,
    retain INTEGER NOT NULL, properties BLOB, expires_at REAL);
CREATE TABLE deliveries (
    seq INTEGER PRIMARY KEY, client_id TEXT NOT NULL, message_id INTEGER NOT NULL,
    qos INTEGER NOT NULL, retain INTEGER NOT NULL, sub_ids TEXT, packet_id INTEGER NOT NULL,
    state INTEGER NOT NULL);
CREATE TABLE awaiting_release (
    client_id TEXT NOT NULL, packet_id INTEGER NOT NULL,
    PRIMARY KEY (client_id, packet_id)) WITHOUT ROWID;
CREATE TABLE retained (
    topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL, properties BLOB,
    expires_at REAL);
"""

_UPSERT_SESSION = "INSERT OR REPLACE INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
_DELETE_SESSION = "DELETE FROM sessions WHERE client_id = ?"
_UPSERT_SUB = "INSERT OR REPLACE INTO subscriptions VALUES (?,?,?,?,?,?,?)"
_DELETE_SUB = "DELETE FROM subscriptions WHERE client_id = ? AND topic_filter = ?"
_INSERT_AWAITING = "INSERT OR IGNORE INTO awaiting_release VALUES (?,?)"
_DELETE_AWAITING = "DELETE FROM awaiting_release WHERE client_id = ? AND packet_id = ?"
_UPSERT_RETAINED = "INSERT OR REPLACE INTO retained VALUES (?,?,?,?,?)"
_DELETE_RETAINED = "DELETE FROM retained WHERE topic = ?"

Rows = list[tuple[Any, ...]]
# (statement, parameters, whether the parameters are many rows for executemany)
Ops = list[tuple[str, Any, bool]]

# The rows of messages and deliveries, the bulk of the writing, go many to a statement: each
# statement is one step of SQLite's, during which the writer thread does not hold the GIL.
# Chunks have power-of-two sizes, so that few distinct statements exist (each is prepared once).
_CHUNKS = (128, 32, 8, 1)


def _multi_row(ops: Ops, table: str, width: int, rows: Rows) -> None:
    for size, params in _chunks(rows):
        ops.append((_insert_sql(table, width, size), params, False))


def _multi_delete(ops: Ops, table: str, key: str, keys: Rows) -> None:
    for size, params in _chunks(keys):
        ops.append((_delete_sql(table, key, size), params, False))


def _chunks(rows: Rows) -> Iterator[tuple[int, list[Any]]]:
    start = 0
    for size in _CHUNKS:
        while len(rows) - start >= size:
            yield size, list(itertools.chain.from_iterable(rows[start:start + size]))
            start += size


@functools.cache
def _insert_sql(table: str, width: int, count: int) -> str:
    values = "(" + ",".join("?" * width) + ")"
    return f"INSERT OR REPLACE INTO {table} VALUES " + ",".join([values] * count)


@functools.cache
def _delete_sql(table: str, key: str, count: int) -> str:
    return f"DELETE FROM {table} WHERE {key} IN (" + ",".join("?" * count) + ")"


class Damaged(Exception):
    """The file is readable as SQLite but its content is not a culex store we can trust."""


class _Batch:
    __slots__ = ("live", "only_deliveries", "ops", "seq", "touched")

    def __init__(self, seq: int, touched: set[Connection]) -> None:
        self.seq = seq
        self.ops: Ops = []
        self.touched = touched  # connections whose writes wait for this batch
        # Deliveries written by this batch and not yet acknowledged. When a batch holds nothing
        # else and they have all been acknowledged while it was being written, what waited for
        # it is released early: those messages reached every persistent session they were for.
        self.live = 0
        self.only_deliveries = True


def default_directory() -> str:
    """systemd's StateDirectory, else the XDG state directory."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return state.split(":")[0]
    xdg = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(xdg, "culex")


class SqliteStore(Store):
    persistent = True

    def __init__(self, directory: str | os.PathLike[str], durability: str = "full",
                 autosave_interval: float = 1.0) -> None:
        # Paths as strings: pathlib is not worth its import (0.6 MB of an idle broker).
        self.directory = os.path.abspath(os.path.expanduser(directory))
        self.path = os.path.join(self.directory, FILE_NAME)
        self.durable = durability == "full"
        self.autosave_interval = autosave_interval
        self.description = (f"{self.path} ({durability} durability"
                            + ("" if self.durable else f", every {autosave_interval:g}s") + ")")
        self._db: sqlite3.Connection | None = None
        self._lock_file: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock: Callable[[], float] = time.monotonic
        self._thread: threading.Thread | None = None
        self._inbox: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        # What changed since the last hand-off, one entry per row: the object to write (read
        # when the batch is built, so later changes are included) or None to delete.
        self._sessions: dict[str, Session | None] = {}
        self._subs: dict[tuple[str, str], Subscription | None] = {}
        self._messages: dict[int, Message | None] = {}
        self._deliveries: dict[int, tuple[str, Outgoing] | None] = {}
        self._awaiting: dict[tuple[str, int], bool] = {}
        self._retained: dict[str, Message | None] = {}
        self._touched: set[Connection] = set()
        self._upserts = 0  # entries of _deliveries that write a row (not None)
        self._batch_seq = 1  # the batch now gathering changes
        self._scheduled = False
        self._lingered = False
        self._lingering_rows = 0
        self._linger_off = 0
        self._cancelled = 0  # rows never written because acknowledged first
        self._cancelled_before = 0
        self._writing: _Batch | None = None  # the batch the writer thread has now
        self._closing = False
        self._waiters: list[asyncio.Future[None]] = []
        self._next_seq = 1
        self._next_message_id = 1

    # -- opening --------------------------------------------------------------------------------

    def load(self) -> Snapshot:
        """Open the store and read it; a damaged file is set aside, not fatal. A store that
        does not exist yet is created when there is first something to write."""
        self._prepare_directory()
        if not os.path.exists(self.path):
            return EMPTY
        import sqlite3

        try:
            snapshot = self._open_and_read()
        except (sqlite3.DatabaseError, Damaged) as exc:
            if isinstance(exc, sqlite3.DatabaseError) and not _is_damage(exc):
                self._close_db()
                raise StoreError(f"cannot open the store {self.path}: {exc}") from None
            self._close_db()
            aside = self._set_aside()
            log.error("the store %s is damaged and was not read (%s); it was moved to %s and "
                      "culex starts with an empty store", self.path, exc, aside)
            snapshot = self._open_and_read()
        if snapshot.deliveries:
            self._next_seq = snapshot.deliveries[-1].seq + 1
        if snapshot.messages:
            self._next_message_id = max(snapshot.messages) + 1
        return snapshot

    def _prepare_directory(self) -> None:
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            fd = os.open(os.path.join(self.directory, "culex.lock"), os.O_RDWR | os.O_CREAT,
                         0o600)
        except OSError as exc:
            raise StoreError(f"cannot use the data directory {self.directory}: "
                             f"{exc.strerror or exc}") from None
        try:
            import fcntl
        except ImportError:  # not on a POSIX system: no lock
            self._lock_file = fd
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(f"the data directory {self.directory} is in use by another "
                             "culex process") from None
        self._lock_file = fd

    def _open_and_read(self) -> Snapshot:
        import sqlite3

        if not os.path.exists(self.path):
            # Created private: it holds every queued payload.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        db = self._db = sqlite3.connect(self.path, isolation_level=None,
                                        check_same_thread=False)
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"cannot use WAL mode for {self.path} (got {mode})")
        # FULL: a commit is on disk when it returns, power loss included; NORMAL in WAL mode
        # may lose the last commits on power loss, which periodic durability accepts anyway.
        db.execute("PRAGMA synchronous=" + ("FULL" if self.durable else "NORMAL"))
        check = db.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            raise Damaged("integrity check: " + "; ".join(str(row[0]) for row in check[:3]))
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master "
                                               "WHERE type = 'table'")}
        if not tables:
            db.executescript("BEGIN;" + _SCHEMA + "INSERT INTO meta VALUES ('schema', "
                             f"{SCHEMA_VERSION}); COMMIT;")
            return EMPTY
        version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() \
            if "meta" in tables else None
        if version is None or version[0] != SCHEMA_VERSION:
            raise Damaged(f"not a culex store of schema version {SCHEMA_VERSION}")
        # Rows whose session or message is gone cannot be left by the writer (a batch is one
        # transaction), but a file edited by hand could have them: they are dropped.
        db.executescript("""BEGIN;
            DELETE FROM subscriptions WHERE client_id NOT IN (SELECT client_id FROM sessions);
            DELETE FROM deliveries WHERE client_id NOT IN (SELECT client_id FROM sessions)
                OR message_id NOT IN (SELECT id FROM messages);
            DELETE FROM awaiting_release
                WHERE client_id NOT IN (SELECT client_id FROM sessions);
            DELETE FROM messages WHERE id NOT IN (SELECT message_id FROM deliveries);
            COMMIT;""")
        return _read(db)

    def _set_aside(self) -> str:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = f"{self.path}.damaged-{stamp}"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.rename(self.path + suffix, aside + suffix)
        return aside

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Begin writing behind, on ``loop``."""
        self._loop = loop
        self._clock = loop.time
        if self._db is not None:
            self._start_writer()

    def _start_writer(self) -> None:
        self._thread = threading.Thread(target=self._write_loop, name="culex-store",
                                        daemon=True)
        self._thread.start()

    def _create(self) -> bool:
        """Create the file for the first write; False (and a retry planned) if it fails."""
        import sqlite3

        try:
            self._open_and_read()
        except (OSError, sqlite3.Error, StoreError) as exc:
            self._close_db()
            if self._closing:
                log.error("cannot create the store %s: %s; what was to be stored since the "
                          "start is lost", self.path, exc)
                return False
            # Acknowledgements that wait for the write keep waiting meanwhile.
            log.error("cannot create the store %s: %s; retrying in 1s", self.path, exc)
            if self._loop is not None:
                self._scheduled = True
                self._loop.call_later(1.0, self._hand_off)
            return False
        log.info("created the store %s", self.path)
        self._start_writer()
        return True

    # -- what the broker records ----------------------------------------------------------------

    def _changed(self) -> None:
        self.changes += 1
        if not self._scheduled:
            self._schedule()

    def _schedule(self) -> None:
        loop = self._loop
        if loop is None or self._closing:
            return
        self._scheduled = True
        if self.durable:
            loop.call_soon(self._hand_off)  # at the end of this loop iteration
        else:
            loop.call_later(self.autosave_interval, self._hand_off)

    def touch(self, conn: Connection | None) -> None:
        if conn is not None and self.durable:
            conn.hold(self._batch_seq)
            self._touched.add(conn)

    def session_saved(self, session: Session) -> None:
        self._sessions[session.client_id] = session
        self._changed()
        self.touch(session.connection)

    def session_adopted(self, session: Session) -> None:
        self.session_saved(session)
        for sub in session.subscriptions.values():
            self.subscription_saved(session, sub)
        for out in session.inflight.values():
            self.outgoing_saved(session, out)
        for out in session.queue or ():
            self.outgoing_saved(session, out)
        for packet_id in session.awaiting_rel or ():
            self.release_awaited(session, packet_id, True)

    def session_forgotten(self, session: Session) -> None:
        self._sessions[session.client_id] = None
        for topic_filter in session.subscriptions:
            self.subscription_removed(session, topic_filter)
        for out in session.inflight.values():
            self.outgoing_removed(session, out)
        for out in session.queue or ():
            self.outgoing_removed(session, out)
        for packet_id in session.awaiting_rel or ():
            self._awaiting[session.client_id, packet_id] = False
        self._changed()

    def subscription_saved(self, session: Session, sub: Subscription) -> None:
        self._subs[session.client_id, sub.topic_filter] = sub
        self._changed()
        self.touch(session.connection)

    def subscription_removed(self, session: Session, topic_filter: str) -> None:
        self._subs[session.client_id, topic_filter] = None
        self._changed()

    def outgoing_saved(self, session: Session, out: Outgoing) -> None:
        if not out.seq:
            out.seq = self._next_seq
            self._next_seq += 1
            message = out.message
            if not message.store_id:
                message.store_id = self._next_message_id
                self._next_message_id += 1
                self._messages[message.store_id] = message
            message.store_refs += 1
        deliveries = self._deliveries
        if deliveries.get(out.seq) is None:
            self._upserts += 1
        deliveries[out.seq] = (session.client_id, out)
        self._changed()
        if out.qos == 2 and out.packet_id:
            # A QoS 2 packet id the client sees (PUBLISH, then PUBREL) must survive a restart,
            # or the message would come back under a new id: a duplicate. A QoS 1 message may
            # go out before its row is written: if the broker dies first, the publisher has
            # not been acknowledged and sends it again, which QoS 1 allows.
            self.touch(session.connection)

    def outgoing_removed(self, session: Session, out: Outgoing) -> None:
        seq = out.seq
        if not seq:
            return
        deliveries = self._deliveries
        if deliveries.get(seq) is not None:
            self._upserts -= 1
        if out.batch:
            deliveries[seq] = None
        else:
            deliveries.pop(seq, None)  # never written: nothing to undo
            self._cancelled += 1
        out.seq = 0
        out.batch = 0
        message = out.message
        message.store_refs -= 1
        if not message.store_refs:
            if message.stored:
                self._messages[message.store_id] = None
            else:
                self._messages.pop(message.store_id, None)
            message.store_id = 0
            message.stored = False
        self._changed()
        # An acknowledged message no longer needs to be on disk: whoever waits only for it
        # need not wait for the disk (MQTT 4.3.2: the publisher's PUBACK means the broker has
        # taken ownership, and the message has reached every persistent session it was for).
        writing = self._writing
        if writing is not None and out.batch == writing.seq:
            writing.live -= 1
            if not writing.live and writing.only_deliveries:
                self._release(writing)
                self._release_open()
        elif not self._upserts:
            self._release_open()

    def release_awaited(self, session: Session, packet_id: int, awaited: bool) -> None:
        self._awaiting[session.client_id, packet_id] = awaited
        self._changed()
        self.touch(session.connection)

    def retained_changed(self, topic: str, message: Message | None) -> None:
        self._retained[topic] = message if message is not None and message.payload else None
        self._changed()

    # -- writing ----------------------------------------------------------------------------------

    def _pending(self) -> bool:
        return bool(self._sessions or self._subs or self._messages or self._deliveries
                    or self._awaiting or self._retained)

    def _hand_off(self, force: bool = False) -> None:
        self._scheduled = False
        if self._writing is not None:
            return
        if self._lingered:
            self._lingered = False
            if (self._cancelled - self._cancelled_before) * 2 < self._lingering_rows:
                # Most of them were still unacknowledged: the clients are slow to answer, and
                # waiting for them only delays their publishers. Write at once for a while.
                self._linger_off = LINGER_OFF_BATCHES
        elif self._linger_off:
            self._linger_off -= 1
        elif not force and self._loop is not None and self._only_in_flight():
            # Every row to write is a QoS 1 message already sent to a connected client, which
            # usually acknowledges it within a round trip: waiting that long may save writing
            # it at all (and deleting it after). Its publisher waits no longer than it would
            # have if the acknowledgement comes: that makes the write moot and releases it.
            self._lingered = True
            self._lingering_rows = self._upserts
            self._cancelled_before = self._cancelled
            self._scheduled = True
            self._loop.call_later(LINGER, self._hand_off)
            return
        if self._db is None and self._pending() and not self._create():
            return
        batch = _Batch(self._batch_seq, self._touched)
        self._batch_seq += 1
        self._touched = set()
        if not self._pending():
            # What the touched connections waited for cancelled out (a message stored and
            # acknowledged within the same batch): nothing to wait for.
            self._release(batch)
            return
        self._build(batch)
        if not batch.live and batch.only_deliveries:
            self._release(batch)  # only deletions left to write
        self._writing = batch
        self._inbox.put(batch)

    def _only_in_flight(self) -> bool:
        """Whether every change gathered is a QoS 1 delivery already sent (or a deletion)."""
        if not self._upserts or self._sessions or self._subs or self._awaiting \
                or self._retained:
            return False
        return all(entry is None or (entry[1].qos == 1 and entry[1].packet_id)
                   for entry in self._deliveries.values())

    def _build(self, batch: _Batch) -> None:
        """The rows of every change gathered so far (on the loop thread: the objects are live)."""
        wall = time.time() - self._clock()  # monotonic -> wall clock, for what must outlive us
        ops = batch.ops
        up: Rows
        down: Rows

        def add(upsert: str, up: Rows, delete: str, down: Rows) -> None:
            if down:
                ops.append((delete, down, True))
            if up:
                ops.append((upsert, up, True))

        batch.only_deliveries = not (self._sessions or self._subs or self._awaiting
                                     or self._retained)
        if self._sessions:
            up, down = [], []
            for client_id, session in self._sessions.items():
                if session is None:
                    down.append((client_id,))
                else:
                    up.append(_session_row(session, wall))
            add(_UPSERT_SESSION, up, _DELETE_SESSION, down)
            self._sessions = {}
        if self._subs:
            up, down = [], []
            for key, sub in self._subs.items():
                if sub is None:
                    down.append(key)
                else:
                    up.append((key[0], sub.topic_filter, sub.qos, sub.no_local,
                               sub.retain_as_published, sub.retain_handling, sub.identifier))
            add(_UPSERT_SUB, up, _DELETE_SUB, down)
            self._subs = {}
        if self._messages:
            up, down = [], []
            for message_id, message in self._messages.items():
                if message is None:
                    down.append((message_id,))
                else:
                    message.stored = True
                    up.append((message_id, *_message_row(message, wall)))
            _multi_delete(ops, "messages", "id", down)
            _multi_row(ops, "messages", 7, up)
            self._messages = {}
        if self._deliveries:
            up, down = [], []
            for seq, entry in self._deliveries.items():
                if entry is None:
                    down.append((seq,))
                else:
                    client_id, out = entry
                    out.batch = batch.seq
                    up.append((seq, client_id, out.message.store_id, out.qos, out.retain,
                               ",".join(map(str, out.sub_ids)) or None, out.packet_id,
                               out.state))
            _multi_delete(ops, "deliveries", "seq", down)
            _multi_row(ops, "deliveries", 8, up)
            batch.live = len(up)
            self._deliveries = {}
            self._upserts = 0
        if self._awaiting:
            up = [key for key, awaited in self._awaiting.items() if awaited]
            down = [key for key, awaited in self._awaiting.items() if not awaited]
            add(_INSERT_AWAITING, up, _DELETE_AWAITING, down)
            self._awaiting = {}
        if self._retained:
            up, down = [], []
            for topic, message in self._retained.items():
                if message is None:
                    down.append((topic,))
                else:
                    row = _message_row(message, wall)
                    up.append((topic, row[1], row[2], row[4], row[5]))
            add(_UPSERT_RETAINED, up, _DELETE_RETAINED, down)
            self._retained = {}

    def _write_loop(self) -> None:
        """The writer thread: one transaction per batch, retried until the disk takes it."""
        import sqlite3

        assert self._loop is not None
        while True:
            batch = self._inbox.get()
            if batch is None:
                return
            db = self._db
            assert db is not None
            delay = 0.1
            while True:
                try:
                    db.execute("BEGIN")
                    for sql, params, many in batch.ops:
                        if many:
                            db.executemany(sql, params)
                        else:
                            db.execute(sql, params)
                    db.execute("COMMIT")
                    break
                except sqlite3.Error as exc:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    if self._closing and delay > 1:
                        log.error("giving up writing the store %s: %s; the last changes are "
                                  "lost", self.path, exc)
                        break
                    # Acknowledgements keep waiting meanwhile: nothing is reported durable
                    # that is not.
                    log.error("cannot write the store %s: %s; retrying in %.1fs", self.path,
                              exc, delay)
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
            self._loop.call_soon_threadsafe(self._committed, batch)

    @staticmethod
    def _release(batch: _Batch) -> None:
        touched, batch.touched = batch.touched, set()
        for conn in touched:
            conn.release(batch.seq)

    def _release_open(self) -> None:
        """Release what waits for the batch still gathering, if it only deletes rows; a
        connection also waiting for the batch being written keeps waiting (order)."""
        if not self._touched or self._sessions or self._subs or self._awaiting \
                or self._retained or self._upserts:
            return
        seq = self._batch_seq
        waiting = set()
        for conn in self._touched:
            if conn.waiting_for() in (0, seq):
                conn.release(seq)
            else:
                waiting.add(conn)
        self._touched = waiting

    def _committed(self, batch: _Batch) -> None:
        self._writing = None
        self._release(batch)
        if self._pending() or self._touched:
            if self.durable or self._closing:
                self._hand_off()
            elif not self._scheduled:
                self._schedule()
        if self._writing is None:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def flush(self) -> None:
        if self._loop is None:
            return
        if self._writing is None:
            self._hand_off(True)
        if self._writing is not None:
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            await waiter

    async def close(self) -> None:
        """Write everything still pending, stop the writer thread, close the file."""
        self._closing = True
        await self.flush()
        if self._thread is not None:
            self._inbox.put(None)
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
            self._thread = None
        self._close_db()  # checkpoints the WAL into the database file
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    if name:
        return name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or name.startswith("SQLITE_CORRUPT")
    import sqlite3

    return type(exc) is sqlite3.DatabaseError  # older sqlite3 modules: not Operational


def _message_row(message: Message, wall: float) -> tuple[Any, ...]:
    props = message.properties
    return (message.topic, message.payload, message.qos, message.retain,
            None if props is NO_PROPERTIES else props.encode(),
            None if message.expiry_at is None else message.expiry_at + wall)


def _session_row(session: Session, wall: float) -> tuple[Any, ...]:
    client = session.client
    will = session.will
    if will is None:
        will_row: tuple[Any, ...] = (None,) * 5 + (None, None)
    else:
        will_row = (*_message_row(will, wall)[:5], session.will_delay, session.will_expiry)
    disconnected = session.disconnected_at
    return (session.client_id, session.expiry_interval,
            None if disconnected is None else disconnected + wall,
            client.username if client else None, client.certificate_subject if client else None,
            client.protocol_version if client else 4, *will_row)


# -- reading, with every value checked: a store is input like any other -----------------------


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise Damaged(what)


def _properties(blob: Any) -> Properties:
    if blob is None:
        return NO_PROPERTIES
    _check(isinstance(blob, bytes), "property block")
    try:
        props, end = decode_properties(blob, 0, len(blob), PacketType.PUBLISH)
    except MQTTError as exc:
        raise Damaged(f"property block: {exc}") from None
    _check(end == len(blob), "property block length")
    return props


def _message(topic: Any, payload: Any, qos: Any, retain: Any, props: Any,
             expires_at: Any) -> StoredMessage:
    _check(isinstance(topic, str) and is_valid_topic_name(topic), f"topic {topic!r}")
    _check(isinstance(payload, bytes), f"payload of {topic!r}")
    _check(qos in (0, 1, 2), f"QoS {qos!r}")
    _check(expires_at is None or isinstance(expires_at, float | int), "expiry")
    return StoredMessage(topic, payload, qos, bool(retain), _properties(props), expires_at)


def _read(db: sqlite3.Connection) -> Snapshot:
    sessions = []
    for row in db.execute("SELECT * FROM sessions"):
        (client_id, expiry, disconnected, username, subject, version,
         will_topic, will_payload, will_qos, will_retain, will_props, will_delay,
         will_expiry) = row
        _check(isinstance(client_id, str) and isinstance(expiry, int) and expiry > 0,
               f"session {client_id!r}")
        _check(version in (3, 4, 5), f"protocol version of {client_id!r}")
        will = None
        if will_topic is not None:
            _check(isinstance(will_delay, int), f"will delay of {client_id!r}")
            will = StoredWill(_message(will_topic, will_payload, will_qos, will_retain,
                                       will_props, None), will_delay, will_expiry)
        sessions.append(StoredSession(client_id, expiry, disconnected, username, subject,
                                      version, will))
    subscriptions = []
    for row in db.execute("SELECT * FROM subscriptions"):
        client_id, topic_filter, qos, no_local, rap, handling, identifier = row
        try:
            shared = parse_shared(topic_filter)
        except ValueError:
            shared = None
            _check(False, f"topic filter {topic_filter!r}")
        _check(shared is not None or is_valid_topic_filter(topic_filter),
               f"topic filter {topic_filter!r}")
        _check(qos in (0, 1, 2) and handling in (0, 1, 2), f"options of {topic_filter!r}")
        subscriptions.append(StoredSubscription(client_id, topic_filter, qos, bool(no_local),
                                                bool(rap), handling, identifier))
    messages = {row[0]: _message(*row[1:])
                for row in db.execute("SELECT * FROM messages")}
    deliveries = []
    for row in db.execute("SELECT * FROM deliveries ORDER BY seq"):
        seq, client_id, message_id, qos, retain, sub_ids, packet_id, state = row
        _check(message_id in messages, f"delivery {seq} of a missing message")
        _check(qos in (0, 1, 2) and 0 <= packet_id <= 65535 and state in (0, 1),
               f"delivery {seq}")
        try:
            ids = tuple(int(part) for part in sub_ids.split(",")) if sub_ids else ()
        except (AttributeError, ValueError):
            raise Damaged(f"subscription identifiers of delivery {seq}") from None
        deliveries.append(StoredDelivery(seq, client_id, message_id, qos, bool(retain), ids,
                                         packet_id, state))
    awaiting = [(row[0], row[1]) for row in db.execute("SELECT * FROM awaiting_release")]
    retained = [_message(topic, payload, qos, True, props, expires)
                for topic, payload, qos, props, expires in db.execute("SELECT * FROM retained")]
    return Snapshot(sessions, subscriptions, messages, deliveries, awaiting, retained)
