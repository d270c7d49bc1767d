"""Incremental decoder: feed bytes as they arrive, take complete packets out.

It reads the fixed header first and refuses a packet whose announced size is above the limit
before buffering any of its body, so a peer cannot make the broker hold more than
``max_packet_size`` bytes for one packet.
"""

from __future__ import annotations

from ._codec import Buffer
from ._errors import MQTTError, malformed
from ._packets import MQTT_5, Connect, Packet, Publish
from ._properties import PacketType
from ._reason_codes import ReasonCode
from ._registry import PACKET_CLASSES, REQUIRED_FLAGS

# The protocol's own ceiling: one byte of header, four of Remaining Length, 268,435,455 of body.
# MQTT 5 counts the whole packet against Maximum Packet Size (3.1.2.11.4); 3.x has no such
# property, and the same figure bounds it.
MAX_PACKET_SIZE = 268_435_455 + 5
_COMPACT_AT = 1 << 16  # drop consumed bytes from an assembly buffer past this many
# From this size on, a packet cut across reads is assembled in a buffer of its own.
LARGE_PACKET = 1 << 16


class AssemblyBudget:
    """Bytes that the large packets being assembled may take, all connections together: a
    hundred clients each announcing a packet of the maximum size must not take the machine's
    memory. A packet that does not fit is refused (Quota exceeded, 0x97) before any of its
    body is kept."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int = 0) -> None:
        self.limit = limit  # 0: no limit
        self.used = 0

    def reserve(self, size: int) -> bool:
        if self.limit and self.used + size > self.limit:
            return False
        self.used += size
        return True

    def release(self, size: int) -> None:
        self.used -= size


class Decoder:
    """Bytes in, packets out. ``version`` is 0 until a CONNECT has been decoded.

    Packets are decoded where they lie: in the ``bytes`` object the transport handed over when
    it holds whole packets (the usual case), so that a payload is copied once, when it is
    sliced out; only a packet cut across two reads is assembled in a ``bytearray`` first.
    """

    __slots__ = ("_budget", "_buf", "_large", "_large_total", "_pos", "max_packet_size",
                 "version")

    def __init__(self, max_packet_size: int = MAX_PACKET_SIZE, version: int = 0,
                 budget: AssemblyBudget | None = None) -> None:
        self.max_packet_size = max_packet_size
        self.version = version
        self._budget = budget
        self._buf: bytes | bytearray = b""
        self._pos = 0
        # A large packet is assembled in a buffer of its own, which is handed over whole when
        # complete: its payload is a view of it, so 100 MB in costs 100 MB, not 300. The buffer
        # grows as the bytes arrive, never ahead of them: announcing 256 MB in a 5-byte header
        # must not make the broker commit 256 MB of memory.
        self._large: bytearray | None = None
        self._large_total = 0

    def feed(self, data: Buffer | memoryview) -> None:
        large = self._large
        if large is not None:
            count = min(len(data), self._large_total - len(large))
            with memoryview(data) as view:
                large += view[:count]
                if count == len(data):
                    return
                data = bytes(view[count:])
        buf = self._buf
        if self._pos >= len(buf):
            self._buf = data if type(data) is bytes else bytes(data)
            self._pos = 0
        elif isinstance(buf, bytearray):
            if self._pos >= _COMPACT_AT:
                del buf[: self._pos]
                self._pos = 0
            buf += data
        else:
            joined = bytearray(memoryview(buf)[self._pos:])
            joined += data
            self._buf = joined
            self._pos = 0

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos + (len(self._large) if self._large is not None else 0)

    def next_packet(self) -> Packet | None:
        """The next complete packet, or ``None`` if more bytes are needed.

        Raises MQTTError for a malformed packet, a protocol violation in the packet's own
        format, or a packet above ``max_packet_size``.
        """
        large = self._large
        if large is not None:
            if len(large) < self._large_total:
                return None
            self.discard()  # handed over: no longer being assembled
            header = 2
            while large[header - 1] & 0x80:
                header += 1
            return self._decode(large[0], large, header, len(large))
        buf = self._buf
        start = self._pos
        size = len(buf)
        if size - start < 2:
            return None
        # Remaining Length: one to four bytes of seven bits (MQTT 1.5.5); one byte for every
        # packet under 128 bytes, hence the short way first.
        length = buf[start + 1]
        i = start + 2
        if length & 0x80:
            length &= 0x7F
            shift = 7
            while True:
                if i >= size:
                    return None
                byte = buf[i]
                length |= (byte & 0x7F) << shift
                i += 1
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise malformed("remaining length longer than four bytes")
        total = i - start + length
        if total > self.max_packet_size:
            raise MQTTError(ReasonCode.PACKET_TOO_LARGE,
                            f"packet of {total} bytes exceeds the maximum of "
                            f"{self.max_packet_size}")
        end = i + length
        if end > size:
            if total >= LARGE_PACKET:
                self._assemble(buf, start, size, total)
            return None
        self._pos = end
        if isinstance(buf, bytearray):
            # Assembled from several reads: take the body out as bytes (one copy), so that
            # the buffer can change while the packet lives on.
            with memoryview(buf) as view:
                body = bytes(view[i:end])
            if end == size:
                self._buf = b""
                self._pos = 0
            return self._decode(buf[start], body, 0, len(body))
        if end == size:
            # Read to its end: not kept while the connection idles (a read is up to 256 KB).
            self._buf = b""
            self._pos = 0
        return self._decode(buf[start], buf, i, end)

    def _assemble(self, buf: bytes | bytearray, start: int, size: int, total: int) -> None:
        """Go on with a large packet in a buffer of its own, if the budget allows it."""
        budget = self._budget
        if budget is not None and not budget.reserve(total):
            raise MQTTError(ReasonCode.QUOTA_EXCEEDED,
                            f"no room for a packet of {total} bytes now: {budget.used} of "
                            f"{budget.limit} bytes are taken by packets being received")
        with memoryview(buf) as view:
            self._large = bytearray(view[start:size])
        self._large_total = total
        self._buf = b""
        self._pos = 0

    def discard(self) -> None:
        """Forget the large packet being assembled, if any (the connection ended, or it is
        complete), and give its room in the budget back."""
        if self._large is None:
            return
        self._large = None
        if self._budget is not None:
            self._budget.release(self._large_total)

    def _decode(self, first: int, data: Buffer, start: int, end: int) -> Packet:
        kind = first >> 4
        flags = first & 0x0F
        if kind == PacketType.PUBLISH:  # the hot path first
            return Publish.decode(flags, data, start, end, self.version)
        cls = PACKET_CLASSES.get(kind)
        if cls is None or (kind == PacketType.AUTH and self.version != MQTT_5):
            raise malformed(f"reserved packet type {kind}")
        if flags != REQUIRED_FLAGS[kind]:
            raise malformed(f"wrong fixed-header flags 0x{flags:X} "
                            f"for {PacketType(kind).name}")  # MQTT-2.1.3-1
        if kind == PacketType.CONNECT:
            packet = Connect.decode(flags, data, start, end, self.version)
            if not self.version:
                self.version = packet.protocol_version
            return packet
        return cls.decode(flags, data, start, end, self.version)
