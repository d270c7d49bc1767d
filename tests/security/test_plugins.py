"""The plugin interface: a chain of links that allow, deny or pass, and per-listener rules."""

from __future__ import annotations

import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from culex.auth import Action, AuthChain, ClientInfo, Verdict
from culex.broker import Broker
from culex.config import Config, ListenerConfig
from culex.protocol import ConnAck, Connect, PubAck, Publish, ReasonCode

from paho_client import Paho
from support import WAIT, FakeScheduler, MemoryClient, bare, broker_with_config


class TokenAuthenticator:
    """Knows the users whose "password" is a token starting with 'tok-'."""

    async def authenticate(self, client: ClientInfo) -> Verdict:
        if client.password is None or not client.password.startswith(b"tok-"):
            return Verdict.NEXT
        return Verdict.ALLOW if client.password == b"tok-good" else Verdict.DENY


class ReadOnlyGuests:
    def authorize(self, client: ClientInfo, action: Action, topic: str) -> Verdict:
        if client.username == "guest":
            return Verdict.ALLOW if action is not Action.PUBLISH else Verdict.DENY
        return Verdict.NEXT


def broker(chain: AuthChain, **options: object) -> Broker:
    config = Config(**options)  # type: ignore[arg-type]
    return Broker(config, FakeScheduler(), chain)


def connect(b: Broker, user: str | None, password: bytes | None) -> MemoryClient:
    client = MemoryClient(b, 5)
    client.send(Connect(f"c-{user}-{password!r}", 5, username=user, password=password))
    return client


def test_chain_order_and_verdicts() -> None:
    b = broker(AuthChain([TokenAuthenticator()], [ReadOnlyGuests()]))
    (ack,) = connect(b, "x", b"tok-good").received()
    assert isinstance(ack, ConnAck) and ack.reason_code == 0
    assert bare(connect(b, "x", b"tok-bad").received()) == [
        ConnAck(False, ReasonCode.BAD_USER_NAME_OR_PASSWORD)]
    # Nobody claimed this user name: refused rather than let through.
    assert bare(connect(b, "x", b"plain").received()) == [
        ConnAck(False, ReasonCode.BAD_USER_NAME_OR_PASSWORD)]
    guest = connect(b, "guest", b"tok-good")
    guest.received()
    guest.send(Publish("t", b"", 1, packet_id=1))
    assert guest.received() == [PubAck(1, ReasonCode.NOT_AUTHORIZED)]
    # An authorizer chain in which nobody decides refuses.
    other = connect(b, "other", b"tok-good")
    other.received()
    other.send(Publish("t", b"", 1, packet_id=1))
    assert other.received() == [PubAck(1, ReasonCode.NOT_AUTHORIZED)]


def test_failing_plugin_refuses_with_server_unavailable() -> None:
    class Broken:
        async def authenticate(self, client: ClientInfo) -> Verdict:
            raise RuntimeError("database down")

    b = broker(AuthChain([Broken()]))
    assert bare(connect(b, "x", b"y").received()) == [ConnAck(False, ReasonCode.SERVER_UNAVAILABLE)]


@pytest.mark.parametrize(("bind", "listener_opt", "global_opt", "allowed"), [
    ("127.0.0.1", None, None, True),
    ("0.0.0.0", None, None, False),  # reachable from the network: not by default
    ("0.0.0.0", True, None, True),
    ("0.0.0.0", None, True, True),
    ("127.0.0.1", None, False, False),
    ("127.0.0.1", True, False, True),  # the listener's own setting wins
])
def test_anonymous_rules(bind: str, listener_opt: bool | None, global_opt: bool | None,
                         allowed: bool) -> None:
    config = Config(allow_anonymous=global_opt)
    listener = ListenerConfig(bind_address=bind, allow_anonymous=listener_opt)
    assert config.anonymous_allowed(listener) is allowed


def test_mosquitto_tools_and_paho_with_passwords(tmp_path: Path) -> None:
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(tmp_path / "passwd"), "sensor", "pw"],
                   check=True, capture_output=True)
    config = 'password_file = "passwd"\nallow_anonymous = false\n'
    with broker_with_config(tmp_path, config) as b:
        sub = Paho(b.port, mqtt.MQTTv5, "p", username="sensor", password="pw").connect()
        sub.subscribe("t", 1)
        ok = subprocess.run(["mosquitto_pub", "-p", str(b.port), "-h", "127.0.0.1",
                             "-u", "sensor", "-P", "pw", "-t", "t", "-m", "m", "-q", "1"],
                            capture_output=True, text=True, timeout=WAIT)
        assert ok.returncode == 0, ok.stderr
        assert sub.get().payload == b"m"
        bad = subprocess.run(["mosquitto_pub", "-p", str(b.port), "-h", "127.0.0.1",
                              "-u", "sensor", "-P", "nope", "-t", "t", "-m", "m"],
                             capture_output=True, text=True, timeout=WAIT)
        assert bad.returncode != 0
        assert "not authorised" in bad.stderr.lower() or "bad user" in bad.stderr.lower()
        sub.disconnect()
