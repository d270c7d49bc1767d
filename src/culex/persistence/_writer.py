"""The writer thread of the embedded store: one transaction per batch, one fsync, retried until
the disk takes it. The event loop hands batches over and is called back when each is durable;
it never waits for the disk."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import asyncio

    from ._file import StoreFile

log = logging.getLogger("culex")

RETRY_FIRST = 0.1  # seconds before the first retry of a failed commit; doubled up to RETRY_MAX
RETRY_MAX = 5.0


class Batch(Protocol):
    @property
    def ops(self) -> list[tuple[str, Any, bool]]: ...


class Writer:
    def __init__(self, file: StoreFile, loop: asyncio.AbstractEventLoop,
                 committed: Callable[[Any, float], None],
                 closing: Callable[[], bool]) -> None:
        self._file = file  # its connection is read per batch
        self._loop = loop
        self._committed = committed  # called on the loop: (batch, seconds the commit took)
        self._closing = closing
        self._inbox: queue.SimpleQueue[Batch | None] = queue.SimpleQueue()
        # Set by the thread while a write keeps failing (read by /ready); a plain bool
        # assignment is atomic.
        self.failing: str | None = None
        self._thread = threading.Thread(target=self._run, name="culex-store", daemon=True)
        self._thread.start()

    def put(self, batch: Batch) -> None:
        self._inbox.put(batch)

    def stop(self) -> None:
        """After the batches already handed over; blocks until the thread is gone."""
        self._inbox.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            batch = self._inbox.get()
            if batch is None:
                return
            seconds = self._write(batch)
            self._loop.call_soon_threadsafe(self._committed, batch, seconds)

    def _write(self, batch: Batch) -> float:
        """Write ``batch`` in one transaction; the time the successful attempt took."""
        import sqlite3

        db = self._file.db
        assert db is not None
        delay = RETRY_FIRST
        while True:
            start = time.perf_counter()
            try:
                db.execute("BEGIN")
                for sql, params, many in batch.ops:
                    if many:
                        db.executemany(sql, params)
                    else:
                        db.execute(sql, params)
                db.execute("COMMIT")
                self.failing = None
                return time.perf_counter() - start
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if self._closing() and delay > 1:
                    log.error("giving up writing the store %s: %s; the last changes are "
                              "lost", self._file.path, exc)
                    return time.perf_counter() - start
                # Acknowledgements keep waiting meanwhile: nothing is reported durable that
                # is not.
                self.failing = str(exc)
                log.error("cannot write the store %s: %s; retrying in %.1fs", self._file.path,
                          exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
