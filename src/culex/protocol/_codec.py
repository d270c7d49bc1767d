"""Primitive data types of MQTT (3.1.1 section 1.5, 5.0 section 1.5).

Encoders append to a ``bytearray``; decoders read ``bytes`` at a position and return the value
with the next position. A packet body is complete before any decoder sees it, so running out of
bytes inside a body means the packet is malformed, never "need more data".
"""

from __future__ import annotations

import codecs

from ._errors import malformed

# What decoders read from: the received bytes, or a buffer a packet was assembled in.
Buffer = bytes | bytearray

MAX_VARINT = 268_435_455  # four bytes of seven bits: the largest Remaining Length (MQTT 1.5.5)
MAX_UINT16 = 0xFFFF


def encode_varint(value: int, buf: bytearray) -> None:
    # MQTT-1.5.5-1: the fewest bytes that hold the value.
    if not 0 <= value <= MAX_VARINT:
        raise ValueError(f"variable byte integer out of range: {value}")
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            buf.append(byte | 0x80)
        else:
            buf.append(byte)
            return


def decode_varint(data: Buffer, pos: int, end: int) -> tuple[int, int]:
    value = 0
    shift = 0
    for i in range(4):
        if pos + i >= end:
            raise malformed("variable byte integer cut short")
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos + i + 1
        shift += 7
    raise malformed("variable byte integer longer than four bytes")


def encode_uint16(value: int, buf: bytearray) -> None:
    buf += value.to_bytes(2, "big")


def decode_uint16(data: Buffer, pos: int, end: int) -> tuple[int, int]:
    if pos + 2 > end:
        raise malformed("two byte integer cut short")
    return (data[pos] << 8) | data[pos + 1], pos + 2


def decode_uint32(data: Buffer, pos: int, end: int) -> tuple[int, int]:
    if pos + 4 > end:
        raise malformed("four byte integer cut short")
    return int.from_bytes(data[pos : pos + 4], "big"), pos + 4


def decode_byte(data: Buffer, pos: int, end: int) -> tuple[int, int]:
    if pos >= end:
        raise malformed("byte cut short")
    return data[pos], pos + 1


def encode_binary(value: bytes, buf: bytearray) -> None:
    if len(value) > MAX_UINT16:
        raise ValueError("binary data longer than 65,535 bytes")
    buf += len(value).to_bytes(2, "big")
    buf += value


def decode_binary(data: Buffer, pos: int, end: int) -> tuple[bytes, int]:
    length, pos = decode_uint16(data, pos, end)
    stop = pos + length
    if stop > end:
        raise malformed("binary data cut short")
    return bytes(data[pos:stop]), stop  # bytes() copies only when data is a bytearray


def encode_utf8(value: str, buf: bytearray) -> None:
    # surrogatepass is not used: a str holding lone surrogates cannot be sent (MQTT-1.5.4-1).
    encode_binary(value.encode("utf-8"), buf)


def check_utf8(raw: bytes | bytearray) -> str:
    """Decode an MQTT UTF-8 string, applying MQTT-1.5.4-1 and MQTT-1.5.4-2.

    Python's strict UTF-8 codec already refuses overlong forms, code points above U+10FFFF and
    the encoded surrogates U+D800..U+DFFF; U+0000 is the one extra rule. A BOM (EF BB BF) is
    kept as U+FEFF, never stripped (MQTT-1.5.4-3).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise malformed(f"invalid UTF-8 at byte {exc.start}") from None
    if "\x00" in text:
        raise malformed("UTF-8 string contains U+0000")
    return text


def decode_utf8(data: Buffer, pos: int, end: int) -> tuple[str, int]:
    raw, pos = decode_binary(data, pos, end)
    return check_utf8(raw), pos


def is_utf8(data: bytes | bytearray | memoryview) -> bool:
    """Whether ``data`` is well-formed UTF-8 (a payload with Payload Format Indicator 1),
    checked a megabyte at a time so that a large payload is never decoded whole."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(view), 1 << 20):
            decoder.decode(view[start:start + (1 << 20)])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True
