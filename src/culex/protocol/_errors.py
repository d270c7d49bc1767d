"""The one error type of the protocol layer.

Like h11's ``LocalProtocolError`` it carries what to answer with: here the MQTT 5 reason code
that the broker puts in its DISCONNECT (v5) before closing the connection (v3 just closes).
"""

from __future__ import annotations

from ._reason_codes import ReasonCode


class MQTTError(Exception):
    """A violation of the protocol by the peer, with the reason code to report it with."""

    def __init__(self, reason_code: ReasonCode, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} ({self.reason_code.name.lower()}, 0x{self.reason_code:02X})"


def malformed(message: str) -> MQTTError:
    return MQTTError(ReasonCode.MALFORMED_PACKET, message)


def protocol_error(message: str) -> MQTTError:
    return MQTTError(ReasonCode.PROTOCOL_ERROR, message)
