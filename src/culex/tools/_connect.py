"""Connecting as mosquitto's tools do, and saying why not in their words (exit status: the
CONNACK's code for a refusal, 1 for a network error)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable

from ..client import Client, ConnectionLost, ConnectRefused
from ..protocol import MQTT_5, Publish, ReasonCode
from ._args import Common

V3_REFUSALS = {1: "Connection Refused: unacceptable protocol version.",
               2: "Connection Refused: identifier rejected.",
               3: "Connection Refused: broker unavailable.",
               4: "Connection Refused: bad user name or password.",
               5: "Connection Refused: not authorised."}


def reason_text(code: int) -> str:
    """A v5 reason code as mosquitto says it ("Not authorized")."""
    try:
        name = ReasonCode(code).name
    except ValueError:
        return f"Unknown reason code {code}"
    return name.replace("_", " ").capitalize().replace("Qos", "QoS")


def describe_os_error(exc: OSError) -> str:
    """As mosquitto says it: "Connection refused", "Name or service not known"..."""
    if isinstance(exc, TimeoutError):
        return "timed out connecting"
    if isinstance(exc, socket.gaierror) and exc.strerror:
        return exc.strerror
    if exc.errno and exc.errno > 0:
        return os.strerror(exc.errno)
    return str(exc)


def err(common: Common, message: str) -> None:
    if not common.quiet:
        print(message, file=sys.stderr)


async def connect(common: Common, on_message: Callable[[Publish], None] | None = None,
                  receive_maximum: int = 65535) -> Client:
    """A connected client, or SystemExit with mosquitto's status and message."""
    # -d lines go to standard output, as mosquitto's tools print them.
    debug = (lambda line: print(line, flush=True)) if common.debug else None
    client = Client(common.options, on_message=on_message, debug=debug)
    try:
        await client.connect(receive_maximum)
    except ConnectRefused as exc:
        if common.options.version == MQTT_5:
            err(common, f"Connection error: {reason_text(exc.code)}")
        else:
            err(common, f"Connection error: {V3_REFUSALS.get(exc.code, exc.code)}")
        raise SystemExit(exc.code) from None
    except ConnectionLost as exc:
        err(common, f"Error: {exc}")
        raise SystemExit(1) from None
    except OSError as exc:
        err(common, f"Error: {describe_os_error(exc)}")
        raise SystemExit(1) from None
    return client
