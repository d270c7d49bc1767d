"""The asyncio layer around a connection, with a stand-in transport: what a bug costs."""

from __future__ import annotations

import asyncio
from typing import Any

from culex.auth import Action, AuthChain, ClientInfo, Verdict
from culex.broker import Broker
from culex.config import Config
from culex.protocol import Connect, Publish, Subscribe, SubscriptionRequest
from culex.transport._tcp import MQTTProtocol


class FakeTransport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False
        self.eof = False  # our side half-closed: a graceful hang-up
        self.reading = True

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.written += data

    def writelines(self, data: list[bytes]) -> None:
        for chunk in data:
            self.written += chunk

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def is_reading(self) -> bool:
        return self.reading

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    @property
    def hung_up(self) -> bool:
        return self.closed or self.eof

    def abort(self) -> None:
        self.closed = True


class FakeServer:
    def admit(self, protocol: object, listener: object) -> bool:
        return True

    def release(self, protocol: object) -> None:
        pass


class BuggyPlugin:
    """An authorization plugin with a bug that one client's PUBLISH runs into, once."""

    def __init__(self) -> None:
        self.failed = False

    def authorize(self, client: ClientInfo, action: Action, topic: str) -> Verdict:
        if client.client_id == "faulty" and action is Action.PUBLISH and not self.failed:
            self.failed = True
            raise RuntimeError("a bug")
        return Verdict.ALLOW


def test_an_internal_error_costs_one_connection_only() -> None:
    """3.1.1: MQTT-4.8.0-2: a transient error while handling a packet closes that connection;
    the broker goes on serving the others."""

    async def scenario() -> None:
        config = Config()
        config.validate()
        plugin = BuggyPlugin()
        broker = Broker(config, asyncio.get_running_loop(), AuthChain(authorizers=[plugin]))
        healthy, faulty = FakeTransport(), FakeTransport()
        protocols = []
        for transport, client_id in ((healthy, "healthy"), (faulty, "faulty")):
            protocol = MQTTProtocol(broker, FakeServer(), None,  # type: ignore[arg-type]
                                    asyncio.get_running_loop())
            protocol.connection_made(transport)  # type: ignore[arg-type]
            protocol.data_received(Connect(client_id).encode(4))
            protocols.append(protocol)
        protocols[0].data_received(Subscribe(1, [SubscriptionRequest("t")]).encode(4))
        protocols[1].data_received(Publish("t", b"lost").encode(4))
        assert plugin.failed and faulty.hung_up and not healthy.hung_up
        protocols[0].data_received(Publish("t", b"delivered").encode(4))  # flushed at its end
        assert b"delivered" in healthy.written and b"lost" not in healthy.written

    asyncio.run(scenario())


def test_what_a_read_brings_goes_out_when_it_is_handled_before_its_acknowledgements() -> None:
    """The messages of one read reach each subscriber in one write when the read has been
    handled (not one loop iteration later), before the publisher's acknowledgements."""

    async def scenario() -> None:
        config = Config()
        config.validate()
        broker = Broker(config, asyncio.get_running_loop())
        log: list[tuple[str, bytes]] = []

        class LoggedTransport(FakeTransport):
            def __init__(self, name: str) -> None:
                super().__init__()
                self.name = name

            def write(self, data: bytes) -> None:
                super().write(data)
                log.append((self.name, bytes(data)))

        protocols = {}
        for name in ("sub", "pub"):
            protocol = MQTTProtocol(broker, FakeServer(), None,  # type: ignore[arg-type]
                                    asyncio.get_running_loop())
            protocol.connection_made(LoggedTransport(name))  # type: ignore[arg-type]
            protocol.data_received(Connect(name).encode(4))
            protocols[name] = protocol
        protocols["sub"].data_received(Subscribe(1, [SubscriptionRequest("t", 1)]).encode(4))
        log.clear()
        burst = [Publish("t", f"m{i}".encode(), qos=1, packet_id=i + 1) for i in range(3)]
        protocols["pub"].data_received(b"".join(p.encode(4) for p in burst))
        assert [name for name, _ in log] == ["sub", "pub"]  # one write each, in that order
        assert all(f"m{i}".encode() in log[0][1] for i in range(3))

    asyncio.run(scenario())
