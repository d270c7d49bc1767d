"""Change tracking of the embedded store: what changed since the last write, one entry per row.

Each entry is the object to write (read when the batch is built, so later changes are included)
or None to delete its row: a message queued and acknowledged before it was written costs nothing
on disk. The store's bookkeeping of the broker's objects (which row a delivery is, which batch
wrote it, how many deliveries refer to a message) lives here, in records of its own keyed by
those objects, never in their fields.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

from ..protocol import NO_PROPERTIES
from ._store import DeliveryState, MessageState, SessionState, StoredDelivery, SubscriptionState

NOT_WRITTEN = 0  # the batch of a delivery whose row is not written yet
WRITTEN_BEFORE = -1  # the batch of a delivery read back at start

_UPSERT_SESSION = "INSERT OR REPLACE INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
_DELETE_SESSION = "DELETE FROM sessions WHERE client_id = ?"
_UPSERT_SUB = "INSERT OR REPLACE INTO subscriptions VALUES (?,?,?,?,?,?,?)"
_DELETE_SUB = "DELETE FROM subscriptions WHERE client_id = ? AND topic_filter = ?"
_INSERT_AWAITING = "INSERT OR IGNORE INTO awaiting_release VALUES (?,?)"
_DELETE_AWAITING = "DELETE FROM awaiting_release WHERE client_id = ? AND packet_id = ?"
_UPSERT_RETAINED = "INSERT OR REPLACE INTO retained VALUES (?,?,?,?,?)"
_DELETE_RETAINED = "DELETE FROM retained WHERE topic = ?"
# A message without properties or expiry leaves those columns out (NULL): binding a None
# costs sqlite3 an adapter lookup (see the deliveries' rows in Changes.build).
_PLAIN_MESSAGES = "messages (id, topic, payload, qos, retain)"

Rows = list[tuple[Any, ...]]
# (statement, parameters, whether the parameters are many rows for executemany)
Ops = list[tuple[str, Any, bool]]

# The rows of messages and deliveries, the bulk of the writing, go many to a statement: each
# statement is one step of SQLite's, during which the writer thread does not hold the GIL.
# Chunks have power-of-two sizes, so that few distinct statements exist (each is prepared once).
_CHUNKS = (128, 32, 8, 1)


class _DeliveryRow:
    __slots__ = ("batch", "born", "seq")

    def __init__(self, seq: int, batch: int, born: int = 0) -> None:
        self.seq = seq  # its row: the order messages were given to the session in
        self.batch = batch  # the batch that last wrote the row (NOT_WRITTEN, WRITTEN_BEFORE)
        self.born = born  # the batch that was gathering changes when it was made


class _MessageRow:
    __slots__ = ("id", "refs", "stored")

    def __init__(self, message_id: int, stored: bool) -> None:
        self.id = message_id
        self.refs = 0  # deliveries that refer to it
        self.stored = stored  # whether its row has been written


class Built(NamedTuple):
    ops: Ops
    deliveries: int  # delivery rows written (not deleted) by these operations
    only_deliveries: bool  # nothing but messages and deliveries


class Changes:
    def __init__(self) -> None:
        self._sessions: dict[str, SessionState | None] = {}
        self._subs: dict[tuple[str, str], SubscriptionState | None] = {}
        self._messages: dict[int, MessageState | None] = {}
        self._deliveries: dict[int, tuple[str, DeliveryState] | None] = {}
        self._awaiting: dict[tuple[str, int], bool] = {}
        self._retained: dict[str, MessageState | None] = {}
        self._rows: dict[DeliveryState, _DeliveryRow] = {}
        self._message_rows: dict[MessageState, _MessageRow] = {}
        # Per batch, the rows made while it gathered changes that are neither written nor
        # removed yet: what an acknowledgement held for that batch still depends on.
        self._unsettled: dict[int, int] = {}
        self.upserts = 0  # entries of _deliveries that write a row (not None)
        self.cancelled = 0  # delivery rows never written because removed first
        self.next_seq = 1
        self.next_message_id = 1

    def pending(self) -> bool:
        return bool(self._deliveries or self._messages or self.other_pending())

    def other_pending(self) -> bool:
        """Whether anything but messages and deliveries changed."""
        return bool(self._sessions or self._subs or self._awaiting or self._retained)

    def only_in_flight(self) -> bool:
        """Whether every change gathered is a QoS 1 delivery already sent (or a deletion)."""
        if not self.upserts or self.other_pending():
            return False
        return all(entry is None or (entry[1].qos == 1 and entry[1].packet_id)
                   for entry in self._deliveries.values())

    def deletions(self) -> bool:
        """Whether rows written before are to be deleted."""
        return None in self._deliveries.values() or None in self._messages.values()

    def unsettled(self, batch: int) -> int:
        """How many rows made while ``batch`` gathered changes are neither written nor
        removed."""
        return self._unsettled.get(batch, 0)

    # -- recording ------------------------------------------------------------------------------

    def session(self, session: SessionState, keep: bool) -> None:
        self._sessions[session.client_id] = session if keep else None

    def subscription(self, client_id: str, topic_filter: str,
                     sub: SubscriptionState | None) -> None:
        self._subs[client_id, topic_filter] = sub

    def awaiting(self, client_id: str, packet_id: int, awaited: bool) -> None:
        self._awaiting[client_id, packet_id] = awaited

    def retained(self, topic: str, message: MessageState | None) -> None:
        self._retained[topic] = message

    def restored(self, out: DeliveryState, stored: StoredDelivery) -> None:
        self._rows[out] = _DeliveryRow(stored.seq, WRITTEN_BEFORE)
        row = self._message_rows.get(out.message)
        if row is None:
            row = self._message_rows[out.message] = _MessageRow(stored.message_id, True)
        row.refs += 1
        self.next_seq = max(self.next_seq, stored.seq + 1)
        self.next_message_id = max(self.next_message_id, stored.message_id + 1)

    def delivery_saved(self, client_id: str, out: DeliveryState, batch: int) -> None:
        """``out`` was given to the session, or changed, while ``batch`` gathers changes."""
        row = self._rows.get(out)
        if row is None:
            row = self._rows[out] = _DeliveryRow(self.next_seq, NOT_WRITTEN, batch)
            self.next_seq += 1
            self._unsettled[batch] = self._unsettled.get(batch, 0) + 1
            message = out.message
            message_row = self._message_rows.get(message)
            if message_row is None:
                message_row = self._message_rows[message] = _MessageRow(self.next_message_id,
                                                                        False)
                self.next_message_id += 1
                self._messages[message_row.id] = message
            message_row.refs += 1
        deliveries = self._deliveries
        if deliveries.get(row.seq) is None:
            self.upserts += 1
        deliveries[row.seq] = (client_id, out)

    def delivery_removed(self, out: DeliveryState) -> int | None:
        """Forget ``out``'s row; the batch that had written it (None: it had no row)."""
        row = self._rows.pop(out, None)
        if row is None:
            return None
        deliveries = self._deliveries
        if deliveries.get(row.seq) is not None:
            self.upserts -= 1
        if row.batch != NOT_WRITTEN:
            deliveries[row.seq] = None
        else:
            deliveries.pop(row.seq, None)  # never written: nothing to undo
            self.cancelled += 1
            left = self._unsettled[row.born] - 1
            if left:
                self._unsettled[row.born] = left
            else:
                del self._unsettled[row.born]
        message = out.message
        message_row = self._message_rows[message]
        message_row.refs -= 1
        if not message_row.refs:
            del self._message_rows[message]
            if message_row.stored:
                self._messages[message_row.id] = None
            else:
                self._messages.pop(message_row.id, None)
        return row.batch

    # -- writing --------------------------------------------------------------------------------

    def build(self, batch: int, clock: float) -> Built:
        """The operations that write every change gathered so far, as batch ``batch``; on the
        loop thread, as the objects are live. ``clock`` is the broker's clock now."""
        wall = time.time() - clock  # monotonic -> wall clock, for what must outlive us
        ops: Ops = []
        only_deliveries = not self.other_pending()
        up, down = _split(self._sessions, lambda _, session: _session_row(session, wall))
        _add(ops, _UPSERT_SESSION, up, _DELETE_SESSION, down)
        up, down = _split(self._subs, lambda key, sub: (
            key[0], sub.topic_filter, sub.qos, sub.no_local, sub.retain_as_published,
            sub.retain_handling, sub.identifier))
        _add(ops, _UPSERT_SUB, up, _DELETE_SUB, down)
        rows = self._message_rows
        messages: Rows = []
        plain: Rows = []  # those without properties or expiry (most)
        gone: Rows = []
        for message_id, message in self._messages.items():
            if message is None:
                gone.append((message_id,))
            else:
                rows[message].stored = True
                row = _message_row(message, wall)
                if row[4] is None and row[5] is None:
                    plain.append((message_id, *row[:4]))
                else:
                    messages.append((message_id, *row))
        _multi_delete(ops, "messages", "id", gone)
        _multi_row(ops, "messages", 7, messages)
        _multi_row(ops, _PLAIN_MESSAGES, 5, plain)
        deliveries: Rows = []
        gone = []
        for seq, entry in self._deliveries.items():
            if entry is None:
                gone.append((seq,))
            else:
                client_id, out = entry
                self._rows[out].batch = batch
                # Values of exactly int or str (a bool as int, no identifiers as ""): for any
                # other type (bool, None, bytes) sqlite3 looks for an adapter first, which
                # costs the writer thread about 0.7 us a value, with the GIL held.
                deliveries.append((seq, client_id, rows[out.message].id, out.qos,
                                   int(out.retain), ",".join(map(str, out.sub_ids)),
                                   out.packet_id, out.state))
        _multi_delete(ops, "deliveries", "seq", gone)
        _multi_row(ops, "deliveries", 8, deliveries)
        _add(ops, _INSERT_AWAITING, [key for key, awaited in self._awaiting.items() if awaited],
             _DELETE_AWAITING, [key for key, awaited in self._awaiting.items() if not awaited])

        def retained_row(topic: str, message: MessageState) -> tuple[Any, ...]:
            row = _message_row(message, wall)
            return (topic, row[1], row[2], row[4], row[5])

        up, down = _split(self._retained, retained_row)
        _add(ops, _UPSERT_RETAINED, up, _DELETE_RETAINED, down)
        self._sessions, self._subs, self._messages = {}, {}, {}
        self._deliveries, self._awaiting, self._retained = {}, {}, {}
        self.upserts = 0
        self._unsettled = {}  # every row made so far is written by this batch
        return Built(ops, len(deliveries), only_deliveries)


def _split(changes: dict[Any, Any], row: Any) -> tuple[Rows, Rows]:
    """The rows to write and the keys to delete, of one table's changes."""
    up: Rows = []
    down: Rows = []
    for key, value in changes.items():
        if value is None:
            down.append(key if isinstance(key, tuple) else (key,))
        else:
            up.append(row(key, value))
    return up, down


def _add(ops: Ops, upsert: str, up: Rows, delete: str, down: Rows) -> None:
    if down:
        ops.append((delete, down, True))
    if up:
        ops.append((upsert, up, True))


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


def _message_row(message: MessageState, wall: float) -> tuple[Any, ...]:
    props = message.properties
    # int(retain): see the deliveries' rows in Changes.build.
    return (message.topic, message.payload, message.qos, int(message.retain),
            None if props is NO_PROPERTIES else props.encode(),
            None if message.expiry_at is None else message.expiry_at + wall)


def _session_row(session: SessionState, wall: float) -> tuple[Any, ...]:
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
