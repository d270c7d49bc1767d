"""The embedded store: SQLite (stdlib ``sqlite3``) in WAL mode, written by one thread.

Changes are not written one by one. The store keeps, per row, the latest state of what changed
since the last write (``_changes``) and hands the lot to a writer thread (``_writer``) as one
transaction with one fsync. While that commit runs, new changes gather into the next one, so
the batches grow with the load and the event loop never waits for the disk.

In ``full`` durability the broker holds back each reply that follows a change (PUBACK, PUBREC,
PUBCOMP, SUBACK, CONNACK, a QoS 2 PUBLISH or PUBREL to a persistent session) until the commit
that contains the change is done: whatever a client was told is on disk. A reply that waited
only for messages which every persistent session has since acknowledged is released without
waiting any longer: those messages need no disk. After a commit, the next batch waits (up to a
millisecond) for the persistent sessions' clients it released replies to, so that their
answers go into it: else each step of an exchange (PUBLISH, PUBREC, PUBREL ...) would take two
commits.

In ``periodic`` durability changes are written every ``autosave_interval`` seconds and nothing
waits; a crash (not a clean stop) loses what was acknowledged since the last write.

The file (``_file``) is created when there is first something to write: until then (clean
sessions only, no retained message) neither the file nor ``sqlite3`` is loaded, which spares an
idle broker 1.7 MB.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._changes import Changes, Ops
from ._file import StoreFile, default_directory
from ._store import (
    DeliveryState,
    Holder,
    MessageState,
    SessionState,
    Snapshot,
    Store,
    StoredDelivery,
    StoreError,
    SubscriptionState,
)

if TYPE_CHECKING:
    from ..observability import Counters
    from ._writer import Writer

__all__ = ["LINGER", "LINGER_OFF_BATCHES", "SqliteStore", "default_directory"]

log = logging.getLogger("culex")

# How long a batch of QoS 1 messages in flight to connected clients waits for their
# acknowledgements before it is written anyway: a few round trips on a local network.
LINGER = 0.005
# When lingering did not pay (most rows still unacknowledged at its end), how many batches are
# written without it before it is tried again.
LINGER_OFF_BATCHES = 8
# The persistent sessions a commit released replies to usually answer within a round trip (a
# PUBREL after a PUBREC, a PUBREC after a QoS 2 PUBLISH, a PUBCOMP after a PUBREL), and what
# they answer needs the next commit. Handed over at once, that commit would hold only what came
# in while the last one was written, and the answers would wait for the one after it: every step
# of an exchange would cost two commits. So the next batch waits for those clients, this long at
# most (a client may have nothing to say). A client without a persistent session is not waited
# for: what it answers (a PUBREL of its own) changes nothing here.
ANSWER_WAIT = 0.001


class _Batch:
    """Changes on their way to disk, and the connections whose writes wait for them."""

    __slots__ = ("answering", "live", "only_deliveries", "ops", "sealed_at", "seq", "touched")

    def __init__(self, seq: int, touched: set[Holder], answering: set[Holder]) -> None:
        self.seq = seq
        self.ops: Ops = []
        self.touched = touched
        self.answering = answering  # those of them whose answers change the store
        # Deliveries written by this batch and not yet acknowledged. When a batch holds nothing
        # else and they have all been acknowledged while it was being written, what waited for
        # it is released early: those messages reached every persistent session they were for.
        self.live = 0  # (of a lingering batch: the rows it had when it stopped gathering)
        self.only_deliveries = True
        self.sealed_at = 0.0  # a lingering batch: when it stopped gathering changes

    def release(self) -> set[Holder]:
        """Release what waited for this batch; the connections whose answers the store waits
        for (none if it was released already)."""
        touched, self.touched = self.touched, set()
        for conn in touched:
            conn.release(self.seq)
        return self.answering if touched else set()


class SqliteStore(Store):
    # Declared here as well as in Store: compiled, this class keeps them in its own fields.
    persistent: bool
    durable: bool
    description: str
    changes: int

    def __init__(self, directory: str | os.PathLike[str], durability: str = "full",
                 autosave_interval: float = 1.0, answer_wait: float = ANSWER_WAIT) -> None:
        self.persistent = True
        self.changes = 0
        self.durable = durability == "full"
        self.file = StoreFile(os.fspath(directory), self.durable)
        self.path = self.file.path
        self.autosave_interval = autosave_interval
        self.answer_wait = answer_wait
        self.description = (f"{self.path} ({durability} durability"
                            + ("" if self.durable else f", every {autosave_interval:g}s") + ")")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock: Callable[[], float] = time.monotonic
        self._counters: Counters | None = None
        self._writer: Writer | None = None
        self._changes = Changes()
        self._touched: set[Holder] = set()
        self._answers: set[Holder] = set()  # of those, the persistent sessions' connections
        self._batch_seq = 1  # the batch now gathering changes
        self._scheduled = False
        # Batches of QoS 1 messages in flight, oldest first, that no longer gather changes and
        # wait (LINGER at most) for their acknowledgements instead of a commit. Each is let go
        # as soon as its rows are acknowledged, in order; the first not acknowledged in time
        # is written, with everything after it.
        self._lingering: list[_Batch] = []
        self._linger_timer: asyncio.TimerHandle | None = None
        self._linger_off = 0
        self._writing: _Batch | None = None  # the batch the writer thread has now
        # The persistent sessions' clients the last commit released replies to, until each has
        # been heard from (a change recorded for it) or answer_wait has passed: the next batch
        # waits for them.
        self._answering: set[Holder] = set()
        self._answer_timer: asyncio.TimerHandle | None = None
        self._create_failed: str | None = None  # why the file could not be made, until it is
        self._closing = False
        self._waiters: list[asyncio.Future[None]] = []

    # -- opening --------------------------------------------------------------------------------

    def load(self) -> Snapshot:
        return self.file.load()

    def trouble(self) -> str | None:
        if self._closing:
            return "the store is closing"
        if self._create_failed is not None:
            return f"the store cannot be created: {self._create_failed}"
        if self._writer is not None and self._writer.failing is not None:
            return f"the store cannot be written: {self._writer.failing}"
        return None  # open, or not created yet (it is on the first write)

    def start(self, loop: asyncio.AbstractEventLoop, counters: Counters | None = None) -> None:
        self._loop = loop
        self._clock = loop.time
        self._counters = counters
        if self.file.db is not None:
            self._start_writer()

    def _start_writer(self) -> None:
        from ._writer import Writer

        assert self._loop is not None
        self._writer = Writer(self.file, self._loop, self._committed, lambda: self._closing)

    def _create(self) -> bool:
        """Create the file for the first write; False (and a retry planned) if it fails."""
        import sqlite3

        try:
            self.file.create()
        except (OSError, sqlite3.Error, StoreError) as exc:
            self.file.close()
            if self._closing:
                log.error("cannot create the store %s: %s; what was to be stored since the "
                          "start is lost", self.path, exc)
                return False
            # Acknowledgements that wait for the write keep waiting meanwhile.
            self._create_failed = str(exc)
            log.error("cannot create the store %s: %s; retrying in 1s", self.path, exc)
            if self._loop is not None:
                self._scheduled = True
                self._loop.call_later(1.0, self._hand_off)
            return False
        log.info("created the store %s", self.path)
        self._create_failed = None
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

    def touch(self, conn: Holder | None) -> None:
        if conn is not None and self.durable:
            conn.hold(self._batch_seq)
            self._touched.add(conn)
            if self._answering:
                self._heard(conn)

    def _touch_session(self, session: SessionState) -> None:
        """``touch`` for a change of a persistent session: its client will answer."""
        conn = session.connection
        if conn is not None and self.durable:
            self.touch(conn)
            self._answers.add(conn)

    def _heard(self, conn: Holder | None) -> None:
        """A change came from ``conn``: if the next batch waited for it alone, it goes now."""
        answering = self._answering
        if conn is None or conn not in answering:
            return
        answering.discard(conn)
        if not answering:
            self._answered()

    def _answered(self) -> None:
        self._answering = set()
        timer, self._answer_timer = self._answer_timer, None
        if timer is not None:
            timer.cancel()
        if not self._scheduled and self._writing is None and (
                self._changes.pending() or self._touched):
            self._schedule()  # at the end of this loop iteration: what else came in joins

    def restored(self, out: DeliveryState, stored: StoredDelivery) -> None:
        self._changes.restored(out, stored)

    def session_saved(self, session: SessionState) -> None:
        self._changes.session(session, True)
        self._changed()
        self._touch_session(session)

    def session_adopted(self, session: SessionState) -> None:
        self.session_saved(session)
        for sub in session.subscriptions.values():
            self.subscription_saved(session, sub)
        for out in session.inflight.values():
            self.outgoing_saved(session, out)
        for out in session.queue or ():
            self.outgoing_saved(session, out)
        for packet_id in session.awaiting_rel or ():
            self.release_awaited(session, packet_id, True)

    def session_forgotten(self, session: SessionState) -> None:
        changes = self._changes
        changes.session(session, False)
        for topic_filter in session.subscriptions:
            self.subscription_removed(session, topic_filter)
        for out in session.inflight.values():
            self.outgoing_removed(session, out)
        for out in session.queue or ():
            self.outgoing_removed(session, out)
        for packet_id in session.awaiting_rel or ():
            changes.awaiting(session.client_id, packet_id, False)
        self._changed()

    def subscription_saved(self, session: SessionState, sub: SubscriptionState) -> None:
        self._changes.subscription(session.client_id, sub.topic_filter, sub)
        self._changed()
        self._touch_session(session)

    def subscription_removed(self, session: SessionState, topic_filter: str) -> None:
        self._changes.subscription(session.client_id, topic_filter, None)
        self._changed()

    def outgoing_saved(self, session: SessionState, out: DeliveryState) -> None:
        self._changes.delivery_saved(session.client_id, out, self._batch_seq)
        self._changed()
        if out.qos == 2 and out.packet_id:
            # A QoS 2 packet id the client sees (PUBLISH, then PUBREL) must survive a restart,
            # or the message would come back under a new id: a duplicate. A QoS 1 message may
            # go out before its row is written: if the broker dies first, the publisher has
            # not been acknowledged and sends it again, which QoS 1 allows.
            self._touch_session(session)

    def outgoing_removed(self, session: SessionState, out: DeliveryState) -> None:
        if self._answering:
            self._heard(session.connection)  # a PUBACK or PUBCOMP
        written_by = self._changes.delivery_removed(out)
        if written_by is None:
            return
        self._changed()
        # An acknowledged message no longer needs to be on disk: whoever waits only for it
        # need not wait for the disk (MQTT 4.3.2: the publisher's PUBACK means the broker has
        # taken ownership, and the message has reached every persistent session it was for).
        writing = self._writing
        if writing is not None and written_by == writing.seq:
            writing.live -= 1
            if not writing.live and writing.only_deliveries:
                writing.release()
                self._release_open()
            return
        if self._lingering:
            self._release_lingering()
        if not self._changes.upserts:
            self._release_open()

    def release_awaited(self, session: SessionState, packet_id: int, awaited: bool) -> None:
        self._changes.awaiting(session.client_id, packet_id, awaited)
        self._changed()
        self._touch_session(session)

    def retained_changed(self, topic: str, message: MessageState | None) -> None:
        self._changes.retained(topic, message if message is not None and message.payload
                               else None)
        self._changed()

    # -- writing ----------------------------------------------------------------------------------

    def _hand_off(self, force: bool = False) -> None:
        self._scheduled = False
        if self._writing is not None:
            return
        if self._answering and not (force or self._closing or self._waiters):
            return  # _answered hands it over (a flush, or closing, waits for nobody)
        changes = self._changes
        if (force or self._closing or self._waiters or self._loop is None
                or not changes.only_in_flight()):
            self._write()
        elif self._linger_off:
            self._linger_off -= 1
            self._write()
        else:
            # Every row to write is a QoS 1 message already sent to a connected client, which
            # usually acknowledges it within a round trip: waiting that long may save writing
            # it at all (and deleting it after). Its publisher waits no longer than it would
            # have if the acknowledgement comes: that makes the write moot and releases it.
            self._linger()

    def _linger(self) -> None:
        """Let the batch gathering changes wait for its acknowledgements instead of a commit;
        the next one gathers what comes meanwhile (and may linger in turn)."""
        loop = self._loop
        assert loop is not None
        if self._touched or self._changes.unsettled(self._batch_seq):
            batch = _Batch(self._batch_seq, self._touched, self._answers)
            self._batch_seq += 1
            self._touched, self._answers = set(), set()
            batch.sealed_at = loop.time()
            batch.live = self._changes.unsettled(batch.seq)
            self._lingering.append(batch)
            self._release_lingering()
        if self._linger_timer is None:
            self._linger_timer = loop.call_later(LINGER, self._lingered)

    def _release_lingering(self) -> None:
        """Let go of the lingering batches whose rows have all been acknowledged, oldest first
        (a connection's writes go out in order)."""
        lingering = self._lingering
        while lingering and not self._changes.unsettled(lingering[0].seq):
            lingering.pop(0).release()

    def _lingered(self) -> None:
        self._linger_timer = None
        if self._writing is not None:
            return  # its commit hands over what is left
        lingering = self._lingering
        loop = self._loop
        assert loop is not None
        if lingering:
            due = lingering[0].sealed_at + LINGER - loop.time()
            if due > 0:  # the first one to linger was let go: this one is younger
                self._linger_timer = loop.call_later(due, self._lingered)
                return
            changes = self._changes
            if sum(changes.unsettled(batch.seq) for batch in lingering) * 2 > \
                    sum(batch.live for batch in lingering):
                # Most rows were still unacknowledged: the clients are slow to answer, and
                # waiting for them only delays their publishers. Write at once for a while.
                self._linger_off = LINGER_OFF_BATCHES
            self._write()
        elif self._changes.deletions():
            self._write()  # what acknowledged rows written before must not stay on disk

    def _write(self) -> None:
        """Hand everything gathered (lingering batches included) to the writer as one batch."""
        changes = self._changes
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        if self.file.db is None and changes.pending() and not self._create():
            return
        touched, answers = self._touched, self._answers
        for lingered in self._lingering:
            touched |= lingered.touched
            answers |= lingered.answering
        self._lingering = []
        batch = _Batch(self._batch_seq, touched, answers)
        self._batch_seq += 1
        self._touched, self._answers = set(), set()
        if not changes.pending():
            # What the touched connections waited for cancelled out (a message stored and
            # acknowledged within the same batch): nothing to wait for.
            batch.release()
            return
        batch.ops, batch.live, batch.only_deliveries = changes.build(batch.seq, self._clock())
        if not batch.live and batch.only_deliveries:
            batch.release()  # only deletions left to write
        self._writing = batch
        assert self._writer is not None
        self._writer.put(batch)

    def _release_open(self) -> None:
        """Release what waits for the batch still gathering, if it only deletes rows; a
        connection also waiting for the batch being written keeps waiting (order)."""
        if not self._touched or self._changes.other_pending() or self._changes.upserts:
            return
        seq = self._batch_seq
        waiting = set()
        for conn in self._touched:
            if conn.waiting_for() in (0, seq):
                conn.release(seq)
            else:
                waiting.add(conn)
        self._touched = waiting
        self._answers &= waiting

    def _committed(self, batch: _Batch, seconds: float) -> None:
        self._writing = None
        if self._counters is not None:
            self._counters.commit(seconds)
        answering = batch.release()
        if (answering and self.durable and not self._closing and not self._waiters
                and self._loop is not None):  # a flush waits for nobody's answers
            if self._answer_timer is not None:
                self._answer_timer.cancel()
            self._answering = answering
            self._answer_timer = self._loop.call_later(self.answer_wait, self._answered)
        elif self._changes.pending() or self._touched:
            if self.durable or self._closing:
                self._hand_off()
            elif not self._scheduled:
                self._schedule()
        # In a method of its own: here, mypy would take self._writing for the None assigned
        # above, and the compiled code would check that it still is after _hand_off.
        self._wake_flushers()

    def _wake_flushers(self) -> None:
        if self._writing is not None:
            return
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
        if self._answer_timer is not None:
            self._answer_timer.cancel()
        await self.flush()
        if self._writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._writer.stop)
            self._writer = None
        self.file.close()  # checkpoints the WAL into the database file
        self.file.unlock()
