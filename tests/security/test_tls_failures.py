"""culex's own TLS layer, in process on asyncio and on uvloop: failed handshakes are counted
by reason and logged with the peer (a few lines a minute at most), and a hang-up ends the TLS
session cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from culex.app import Server
from culex.config import Config, ListenerConfig
from culex.observability import LogSampler
from culex.protocol import Connect, Publish
from culex.transport import _tls_stream

from certs import CertSet
from support import WAIT

LOOPS = ["asyncio", "uvloop"]


def run(loop_kind: str, scenario: Callable[[], Awaitable[None]]) -> None:
    if loop_kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        uvloop.run(scenario())
    else:
        asyncio.run(scenario())


@contextlib.asynccontextmanager
async def tls_server(certs: CertSet, **listener: object) -> AsyncIterator[tuple[Server, int]]:
    config = Config(listeners=[ListenerConfig(port=0, certfile=certs.server.cert,
                                              keyfile=certs.server.key, **listener)],
                    persistence=False)
    config.validate()
    server = Server(config)
    [(_, port)] = await server.start()
    try:
        yield server, port
    finally:
        await server.shutdown()


def client_context(certs: CertSet, pair: object = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certs.ca.cert)
    if pair is not None:
        context.load_cert_chain(pair.cert, pair.key)  # type: ignore[attr-defined]
    return context


async def failures_reach(server: Server, reason: str, count: int) -> dict[str, int]:
    async def reached() -> dict[str, int]:
        while server.counters.tls_failures.get(reason, 0) < count:
            await asyncio.sleep(0.01)
        return dict(server.counters.tls_failures)

    return await asyncio.wait_for(reached(), WAIT)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_good_client_talks_mqtt_and_is_hung_up_on_cleanly(certs: CertSet,
                                                             loop_kind: str) -> None:
    async def scenario() -> None:
        async with tls_server(certs) as (server, port):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_context(certs), server_hostname="localhost")
            writer.write(Connect("tls-good", 5).encode(5))
            head = await asyncio.wait_for(reader.readexactly(2), WAIT)
            assert head[0] == 0x20  # CONNACK
            connack = await asyncio.wait_for(reader.readexactly(head[1]), WAIT)
            assert connack[1] == 0  # Success
            assert writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
            # A PUBLISH to a topic with a wildcard: the broker says why (DISCONNECT 0x90) and
            # hangs up. The client reads that and then the end of the TLS session, a
            # close_notify: no reset, no "EOF in violation of protocol".
            writer.write(Publish("bad/+", b"x").encode(5))
            rest = await asyncio.wait_for(reader.read(), WAIT)
            assert rest[:1] == b"\xe0" and rest[2] == 0x90 and len(rest) == 2 + rest[1]
            assert server.counters.tls_failures == {}
            writer.close()

    run(loop_kind, scenario)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_failed_handshakes_are_counted_by_reason_and_logged_with_the_peer(
        certs: CertSet, loop_kind: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "culex")
    peers: list[str] = []

    async def scenario() -> None:
        async with tls_server(certs, cafile=certs.ca.cert, require_certificate=True) \
                as (server, port):
            # Plain MQTT to the TLS port.
            plain = socket.create_connection(("127.0.0.1", port))
            plain.sendall(Connect("plain", 4).encode(4) + b"\x00" * 64)
            host, port_used = plain.getsockname()[:2]
            peers.append(f"from {host}:{port_used} ")
            await failures_reach(server, "wrong_version_number", 1)
            plain.close()
            # A client certificate from a CA the listener does not trust, and an expired one.
            for pair in (certs.foreign, certs.expired):
                # TLS 1.3: the client may finish its side of the handshake and learn of the
                # refusal only on its first read, as an alert or the end of the stream.
                with contextlib.suppress(ssl.SSLError, ConnectionError):
                    reader, writer = await asyncio.open_connection(
                        "127.0.0.1", port, ssl=client_context(certs, pair),
                        server_hostname="localhost")
                    writer.write(Connect("refused", 4).encode(4))
                    assert await asyncio.wait_for(reader.read(), WAIT) == b""  # no CONNACK
                    writer.close()
            counts = await failures_reach(server, "certificate_verify_failed", 2)
            # A peer that opens the connection and goes away before finishing.
            quitter = socket.create_connection(("127.0.0.1", port))
            quitter.close()
            counts = await failures_reach(server, "closed", 1)
            assert counts == {"wrong_version_number": 1, "certificate_verify_failed": 2,
                              "closed": 1}
            assert server.counters.snapshot()["connections"]["tls_failures"] == counts
            assert server.counters.connections_opened == 0  # none reached MQTT

    run(loop_kind, scenario)
    lines = [r.getMessage() for r in caplog.records if "TLS handshake failed" in r.getMessage()]
    assert len(lines) == 4
    assert "wrong version number" in lines[0] and peers[0] in lines[0]
    assert sum("client certificate refused: " in line for line in lines) == 2
    assert any("expired" in line for line in lines)


def test_a_silent_peer_is_dropped_after_the_handshake_timeout(
        certs: CertSet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tls_stream, "HANDSHAKE_TIMEOUT", 0.2)

    async def scenario() -> None:
        async with tls_server(certs) as (server, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(reader.read(), WAIT) == b""  # hung up on
            assert server.counters.tls_failures == {"timeout": 1}
            writer.close()

    run("uvloop", scenario)


def test_a_flood_of_failures_is_logged_a_few_lines_a_minute(
        certs: CertSet, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "culex")

    async def scenario() -> None:
        async with tls_server(certs) as (server, port):
            for _ in range(25):
                plain = socket.create_connection(("127.0.0.1", port))
                plain.sendall(b"\x10" * 200)
                await failures_reach(server, "wrong_version_number",
                                     server.counters.tls_failures.get("wrong_version_number",
                                                                      0) + 1)
                plain.close()

    run("asyncio", scenario)
    lines = [r for r in caplog.records if "TLS handshake failed" in r.getMessage()]
    assert len(lines) == 10


def test_log_sampler_says_how_many_lines_it_left_out() -> None:
    now = [0.0]
    sampler = LogSampler(burst=3, period=60.0, clock=lambda: now[0])
    assert [sampler.admit() for _ in range(5)] == [0, 0, 0, None, None]
    now[0] = 59.9
    assert sampler.admit() is None
    now[0] = 60.0
    assert sampler.admit() == 3  # the first line of the next minute counts the ones left out
    assert sampler.admit() == 0
