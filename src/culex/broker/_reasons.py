"""Why a connection ends, said to the client (a Reason String within its Maximum Packet
Size) and to the counters (a label per reason code)."""

from __future__ import annotations

from collections.abc import Callable

from ..protocol import MQTT_5, NO_PROPERTIES, Packet, Properties, ReasonCode

CLOSE_REASONS: dict[int, str] = {
    ReasonCode.SESSION_TAKEN_OVER: "taken_over",
    ReasonCode.KEEP_ALIVE_TIMEOUT: "keep_alive",
    ReasonCode.SERVER_SHUTTING_DOWN: "shutdown",
    ReasonCode.NOT_AUTHORIZED: "not_authorized",
}


def reason_name(code: int) -> str:
    """A reason code as a counter's label: its name in lower case."""
    try:
        return ReasonCode(code).name.lower()
    except ValueError:
        return f"0x{code:02x}"


def explained(make: Callable[[Properties], Packet], why: str, limit: int) -> Packet:
    """``make``'s packet with a Reason String saying ``why``, unless that would make it larger
    than the client's Maximum Packet Size (MQTT-3.2.2-19, MQTT-3.14.2-3). CONNACK and DISCONNECT
    may carry one whatever the client's Request Problem Information (MQTT-3.1.2-29)."""
    packet = make(Properties(reason_string=why))
    if limit and len(packet.encode(MQTT_5)) > limit:
        packet = make(NO_PROPERTIES)
    return packet
