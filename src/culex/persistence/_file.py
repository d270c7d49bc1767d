"""The SQLite file of the embedded store: its directory and lock, its schema, damage found
when it is opened (the file is set aside, not trusted), and reading it back at start.

Nothing here runs per message: the writer thread and the change tracking are elsewhere.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from ..protocol import (
    NO_PROPERTIES,
    MQTTError,
    PacketType,
    Properties,
    decode_properties,
    is_valid_topic_name,
    parse_filter,
)
from ._store import (
    EMPTY,
    Snapshot,
    StoredDelivery,
    StoredMessage,
    StoredSession,
    StoredSubscription,
    StoredWill,
    StoreError,
)

if TYPE_CHECKING:
    import sqlite3

log = logging.getLogger("culex")

FILE_NAME = "culex.db"
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

class Damaged(Exception):
    """The file is readable as SQLite but its content is not a culex store we can trust."""


def default_directory() -> str:
    """systemd's StateDirectory, else the XDG state directory."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return state.split(":")[0]
    xdg = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(xdg, "culex")


class StoreFile:
    """One data directory, locked for this process, and the store file in it."""

    def __init__(self, directory: str, durable: bool) -> None:
        # Paths as strings: pathlib is not worth its import (0.6 MB of an idle broker).
        self.directory = os.path.abspath(os.path.expanduser(directory))
        self.path = os.path.join(self.directory, FILE_NAME)
        self.durable = durable
        self.db: sqlite3.Connection | None = None
        self._lock_file: int | None = None

    def load(self) -> Snapshot:
        """Lock the directory and read the file; a damaged file is set aside, not fatal. A file
        that does not exist yet is created by ``create``, when there is something to write."""
        self._prepare_directory()
        if not os.path.exists(self.path):
            return EMPTY
        import sqlite3

        try:
            return self._open_and_read()
        except (sqlite3.DatabaseError, Damaged) as exc:
            if isinstance(exc, sqlite3.DatabaseError) and not _is_damage(exc):
                self.close()
                raise StoreError(f"cannot open the store {self.path}: {exc}") from None
            self.close()
            aside = self._set_aside()
            log.error("the store %s is damaged and was not read (%s); it was moved to %s and "
                      "culex starts with an empty store", self.path, exc, aside)
            return self._open_and_read()

    def create(self) -> None:
        """Create (or open) the file for the first write; raises what stops it."""
        self._open_and_read()

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
        db = self.db = sqlite3.connect(self.path, isolation_level=None,
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

    def close(self) -> None:
        """Close the file (which checkpoints the WAL into it); the lock is kept."""
        if self.db is not None:
            self.db.close()
            self.db = None

    def unlock(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    if name:
        return name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or name.startswith("SQLITE_CORRUPT")
    import sqlite3

    return type(exc) is sqlite3.DatabaseError  # older sqlite3 modules: not Operational


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
            parse_filter(topic_filter)
        except (TypeError, AttributeError, ValueError):
            _check(False, f"topic filter {topic_filter!r}")
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
