"""``culex sub -F``: mosquitto_sub's output format codes.

``%t`` topic, ``%p`` payload, ``%x``/``%X`` payload in hex, ``%l`` payload length, ``%q`` QoS,
``%r`` retain flag, ``%m`` packet id, ``%I`` ISO 8601 time, ``%U`` Unix time with nanoseconds,
``%j``/``%J`` the message as JSON (payload quoted, or as JSON itself), MQTT 5 properties ``%A``
topic alias, ``%C`` content type, ``%D`` correlation data, ``%E`` message expiry, ``%F``
payload format, ``%P`` user properties (``key:value``, space separated), ``%R`` response
topic, ``%S`` subscription identifiers; ``%%`` a percent sign; ``@X`` the strftime code
``%X`` of the receiving time (``@@`` an at sign); ``\\n \\t \\r \\a \\e \\v \\\\`` escapes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from ..protocol import Publish

_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "a": b"\a", "e": b"\x1b", "v": b"\v",
            "\\": b"\\", "0": b"\0"}


def _iso(now: float, fraction: bool) -> str:
    local = time.localtime(now)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", local)
    if fraction:
        stamp += f".{int(now % 1 * 1_000_000):06d}"
    return stamp + time.strftime("%z", local)


def _properties(message: Publish) -> dict[str, object]:
    """The message's MQTT 5 properties under mosquitto_sub's JSON names, in its order."""
    p = message.properties
    found: dict[str, object] = {}
    for name, value in (("payload-format-indicator", p.payload_format_indicator),
                        ("message-expiry-interval", p.message_expiry_interval),
                        ("content-type", p.content_type),
                        ("response-topic", p.response_topic),
                        ("correlation-data", p.correlation_data),
                        ("user-properties", dict(p.user_properties) or None),
                        ("topic-alias", p.topic_alias)):
        if value is not None:
            found[name] = value.decode("utf-8", "replace") if isinstance(value, bytes) \
                else value
    if p.subscription_identifiers:
        found["subscription-identifier"] = p.subscription_identifiers[0]
    return found


def _json(message: Publish, now: float, raw: bool) -> bytes:
    payload = bytes(message.payload)
    fields: dict[str, object] = {"tst": _iso(now, True), "topic": message.topic,
                                 "qos": message.qos, "retain": int(message.retain),
                                 "payloadlen": len(payload)}
    properties = _properties(message)
    if properties:
        fields["properties"] = properties
    head = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))[:-1]
    if raw:
        body = payload.decode("utf-8", "replace")
    else:
        body = json.dumps(payload.decode("utf-8", "replace"), ensure_ascii=False)
    return f'{head},"payload":{body}}}'.encode()


def _text(value: object) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    return str(value).encode()


_CODES: dict[str, Callable[[Publish, float], bytes]] = {
    "t": lambda m, now: m.topic.encode(),
    "p": lambda m, now: bytes(m.payload),
    "x": lambda m, now: bytes(m.payload).hex().encode(),
    "X": lambda m, now: bytes(m.payload).hex().upper().encode(),
    "l": lambda m, now: str(len(m.payload)).encode(),
    "q": lambda m, now: str(m.qos).encode(),
    "r": lambda m, now: str(int(m.retain)).encode(),
    "m": lambda m, now: str(m.packet_id).encode(),
    "I": lambda m, now: _iso(now, False).encode(),
    "U": lambda m, now: f"{int(now)}.{int(now % 1 * 1e9):09d}".encode(),
    "j": lambda m, now: _json(m, now, False),
    "J": lambda m, now: _json(m, now, True),
    "A": lambda m, now: _text(m.properties.topic_alias),
    "C": lambda m, now: _text(m.properties.content_type),
    "D": lambda m, now: _text(m.properties.correlation_data),
    "E": lambda m, now: _text(m.properties.message_expiry_interval),
    "F": lambda m, now: _text(m.properties.payload_format_indicator),
    "P": lambda m, now: " ".join(f"{k}:{v}" for k, v in m.properties.user_properties).encode(),
    "R": lambda m, now: _text(m.properties.response_topic),
    "S": lambda m, now: ",".join(map(str, m.properties.subscription_identifiers)).encode(),
}


class Formatter:
    """A compiled format: a list of literal bytes and fields."""

    def __init__(self, fmt: str) -> None:
        self.parts: list[bytes | Callable[[Publish, float], bytes]] = []
        literal = bytearray()
        index = 0
        while index < len(fmt):
            char = fmt[index]
            following = fmt[index + 1] if index + 1 < len(fmt) else ""
            if char == "%" and following:
                index += 2
                if following == "%":
                    literal += b"%"
                elif following in _CODES:
                    self._flush(literal)
                    self.parts.append(_CODES[following])
                else:
                    raise ValueError(f"unknown format code %{following}")
                continue
            if char == "@" and following:
                index += 2
                if following == "@":
                    literal += b"@"
                else:
                    self._flush(literal)
                    code = "%" + following
                    self.parts.append(lambda m, now, code=code:  # type: ignore[misc]
                                      time.strftime(code, time.localtime(now)).encode())
                continue
            if char == "\\" and following in _ESCAPES:
                literal += _ESCAPES[following]
                index += 2
                continue
            literal += char.encode()
            index += 1
        self._flush(literal)

    def _flush(self, literal: bytearray) -> None:
        if literal:
            self.parts.append(bytes(literal))
            literal.clear()

    def __call__(self, message: Publish, now: float) -> bytes:
        return b"".join(part if isinstance(part, bytes) else part(message, now)
                        for part in self.parts)
