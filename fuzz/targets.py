"""What the fuzzer feeds: the decoder, and a client connection on a whole (sans-IO) broker.

A target returns normally for every input the protocol refuses cleanly (MQTTError inside the
decoder; a DISCONNECT or a closed connection on the broker) and raises for anything else: an
unexpected exception, an internal error the broker logged, or a broker that no longer serves.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

from culex.config import Config  # noqa: E402
from culex.protocol import (  # noqa: E402
    Connect,
    Decoder,
    MQTTError,
    PingReq,
    PingResp,
    Publish,
    Subscribe,
    SubscriptionRequest,
)

from support import FakeScheduler, MemoryClient  # noqa: E402


class InternalError(AssertionError):
    """The broker logged an error of its own: a bug, whatever the input."""


class _Alarm(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            raise InternalError(record.getMessage())


logging.getLogger("culex").addHandler(_Alarm())
logging.getLogger("culex").propagate = False


def _cuts(data: bytes) -> tuple[int, list[bytes]]:
    """A protocol version and the rest of ``data`` cut where its first bytes say."""
    if len(data) < 2:
        return 4, [data]
    version = (3, 4, 5)[data[0] % 3]
    step = 1 + data[1] % 64
    body = data[2:]
    return version, [body[i:i + step] for i in range(0, len(body), step)] or [b""]


def decoder(data: bytes) -> None:
    version, chunks = _cuts(data)
    decoder = Decoder(1 << 16, version)
    try:
        for chunk in chunks:
            decoder.feed(chunk)
            while (packet := decoder.next_packet()) is not None:
                packet.encode(version)  # what was decoded can be written back
    except MQTTError:
        pass  # refused cleanly: the connection would end with the spec's reason code


def connection(data: bytes) -> None:
    version, chunks = _cuts(data)
    scheduler = FakeScheduler()
    config = Config(max_inflight_messages=3, max_queued_messages=5, max_packet_size=4096)
    config.validate()
    from culex.broker import Broker

    broker = Broker(config, scheduler)
    watcher = MemoryClient(broker, 4)
    watcher.send(Connect("watcher", 4, keep_alive=0),
                 Subscribe(1, [SubscriptionRequest("#", 2)]))
    fuzzed = MemoryClient(broker, version)
    fuzzed.send(Connect("fuzzed", version, clean_start=bool(data[:1] and data[0] & 8)))
    for chunk in chunks:
        fuzzed.send_raw(chunk)
        scheduler.advance(chunk[0] % 4 if chunk else 0)
    fuzzed.drop()
    scheduler.advance(100)
    probe = MemoryClient(broker, 5)
    probe.send(Connect("probe", 5), PingReq(), Publish("probe/t", b"alive"))
    if PingResp() not in probe.received():
        raise AssertionError("the broker no longer answers")
    if not any(isinstance(p, Publish) and p.payload == b"alive" for p in watcher.received()):
        raise AssertionError("the broker no longer delivers")


TARGETS = {"decoder": decoder, "connection": connection}
