"""The thin asyncio layer: one asyncio protocol per TCP connection.

``data_received`` feeds the connection inline, so packets are handled in the order they came, with
no task per packet. Writes are coalesced: everything a connection is given while one client's
input is handled (the messages a read brought, for each subscriber) goes to its transport in
one call when that read has been handled; what is written at other times, at the end of the
loop iteration.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

from ._setup import open_connection, peer_name

if TYPE_CHECKING:
    from ..broker import Connection, Host
    from ..config import ListenerConfig
    from ..observability import Counters
    from ._setup import Gate

log = logging.getLogger("culex")

# How much may wait in a connection's transport buffer before it counts as a slow consumer
# (and further messages wait in its session queue, under the queue limits): enough for a
# burst to a healthy subscriber to go straight out, small enough to bound memory per client.
WRITE_BUFFER_HIGH = 1 << 18
WRITE_BUFFER_LOW = 1 << 16
# After the broker hangs up, how long the peer's input is still read (and discarded), waiting
# for it to close its side.
DRAIN_TIME = 0.5
# Bytes read from one client in one turn of the event loop, at most (and one read more).
READ_SLICE = 1 << 18
# Up to this many bytes written in one loop iteration are joined into one buffer.
JOIN_LIMIT = 1 << 18


class _Reading:
    """The read being handled, if any (the loop handles one at a time), and the connections
    given something to write meanwhile: they write when it has been handled."""

    __slots__ = ("active", "written")

    def __init__(self) -> None:
        self.active = False
        self.written: list[MQTTProtocol] = []


# Of the process: the listeners of a process run on one event loop (culex starts no other).
_READING = _Reading()


class MQTTProtocol:
    """An asyncio protocol by its methods (what uvloop and asyncio call), not by subclassing
    asyncio.Protocol: so mypyc compiles it (setup.py), as it cannot derive a native class
    from one that is not."""

    __slots__ = ("_conn", "_counters", "_drain", "_flush_handle", "_gate", "_held", "_host",
                 "_listener", "_loop", "_out", "_pending", "_read_this_turn", "_reading",
                 "_sliced", "_transport")

    def __init__(self, host: Host, gate: Gate, listener: ListenerConfig | None,
                 loop: asyncio.AbstractEventLoop) -> None:
        self._gate = gate
        self._listener = listener
        self._host = host
        self._counters: Counters = host.counters
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._conn: Connection | None = None
        # What was written this turn, made on first use: an idle connection keeps no list.
        self._out: list[bytes | memoryview] | None = None
        self._pending = 0  # bytes in _out
        self._flush_handle: asyncio.Handle | None = None
        self._reading = False  # inside data_received, which flushes on its way out
        # Reading is paused while the connection holds it, and for the rest of a loop
        # iteration each time READ_SLICE more bytes have been read (a flood reaches that
        # within one iteration; a slow client pauses once per READ_SLICE, for one iteration).
        self._held = False
        self._sliced = False
        self._read_this_turn = 0
        self._drain: asyncio.TimerHandle | None = None  # the limit of a graceful close

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        peercert = transport.get_extra_info("peercert") if self._listener and self._listener.tls \
            else None
        self._conn = open_connection(self._host, self._gate, self,
                                     peer_name(transport.get_extra_info("peername")),
                                     self._listener, peercert)
        if self._conn is None:
            self._transport.abort()
            return
        # TCP_NODELAY: asyncio and uvloop both set it on every TCP transport already.
        self._transport.set_write_buffer_limits(WRITE_BUFFER_HIGH, WRITE_BUFFER_LOW)

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        if conn is None or self._drain is not None:
            return  # hung up: discarded
        self._read_this_turn += len(data)
        if self._read_this_turn >= READ_SLICE and not self._sliced:
            # Enough from this client for one turn of the loop: the others' input and output
            # go first (the event loop's reader would otherwise read on, dozens of times).
            self._sliced = True
            self._transport_reading()
            self._loop.call_soon(self._next_turn)
        self._reading = True
        reading = _READING
        reading.active = True
        try:
            conn.data_received(data)
        except Exception:
            # A bug must cost one connection, never the broker.
            log.exception("internal error on connection from %s; closing it", conn.peer)
            self.close()
            conn.connection_lost()
            return
        finally:
            self._reading = False
            reading.active = False
            # What the read gave the others (the messages it brought, to their subscribers)
            # goes out now, each in one write, first: a message waits for no acknowledgement.
            written = reading.written
            if written:
                reading.written = []
                for other in written:
                    other._flush()
        if self._out:
            # Replies to what was just read (CONNACK, PUBACK, PINGRESP ...) go out now, in one
            # write, rather than one loop iteration later.
            self._flush()

    def eof_received(self) -> bool | None:
        return None  # the peer closed its side: the transport closes, connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._gate.release(self)
        if self._drain is not None:
            self._drain.cancel()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._out = None
        self._pending = 0
        conn = self._conn
        if conn is not None:
            try:
                conn.connection_lost()
            except Exception:
                log.exception("internal error closing connection from %s", conn.peer)

    # Flow control: asyncio calls these around its write-buffer high and low water marks.

    def pause_writing(self) -> None:
        if self._conn is not None:
            self._conn.pause_writing()

    def resume_writing(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            conn.resume_writing()
        except Exception:
            log.exception("internal error on connection from %s; closing it", conn.peer)
            self.close()
            conn.connection_lost()

    # -- the Sink interface of Connection ----------------------------------------------------

    def write(self, data: bytes | memoryview) -> None:
        out = self._out
        if out is None:
            self._out = [data]
        else:
            out.append(data)
        self._pending += len(data)
        if self._pending >= WRITE_BUFFER_HIGH:
            # A burst (a new subscription's retained messages): out now rather than at the
            # end of the turn, so that the transport says when its buffer is full
            # (pause_writing) and the rest waits in the session, not here.
            self._flush()
        elif self._flush_handle is None and not self._reading:
            reading = _READING
            if not reading.active:
                self._flush_handle = self._loop.call_soon(self._flush)
            elif out is None:  # the first write since the last flush
                reading.written.append(self)

    def flush(self) -> None:
        self._flush()

    def pause_reading(self) -> None:
        self._held = True
        self._transport_reading()

    def resume_reading(self) -> None:
        self._held = False
        self._transport_reading()

    def _next_turn(self) -> None:
        self._read_this_turn = 0
        self._sliced = False
        self._transport_reading()

    def _transport_reading(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._held or self._sliced:
            if transport.is_reading():
                transport.pause_reading()
        elif not transport.is_reading():
            transport.resume_reading()

    def close(self) -> None:
        """Hang up gracefully: what is written goes out followed by a FIN, and what the peer
        still sends is read and discarded until it closes too (DRAIN_TIME at most). Closing
        with unread input would make the kernel send a reset, which can reach the peer before
        our last packet (a DISCONNECT saying why) is read."""
        transport = self._transport
        if transport is None or self._drain is not None:
            return
        self._flush()
        if transport.is_closing() or not transport.can_write_eof():  # TLS: no half-close
            transport.close()  # sends what is buffered, then closes
            return
        transport.write_eof()
        self._drain = self._loop.call_later(DRAIN_TIME, transport.abort)
        self._held = self._sliced = False
        self._transport_reading()

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()  # called early, or by the scheduled call itself
            self._flush_handle = None
        out = self._out
        if (out and self._transport is not None and not self._transport.is_closing()
                and self._drain is None):
            self._out = None
            self._pending = 0
            if len(out) == 1:
                self._counters.bytes_sent += len(out[0])
                self._transport.write(out[0])
            else:
                size = sum(map(len, out))
                self._counters.bytes_sent += size
                if size <= JOIN_LIMIT:
                    # One buffer: what the socket cannot take at once waits in the transport
                    # as one object, not as thousands of small ones (4-byte PUBACKs cost ten
                    # times their size each as objects).
                    self._transport.write(b"".join(out))
                else:
                    self._transport.writelines(out)  # large payloads are not copied
