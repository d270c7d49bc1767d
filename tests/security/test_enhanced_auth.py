"""MQTT 5 enhanced authentication (MQTT 5.0 4.12) with SCRAM-SHA-256 (RFC 5802, RFC 7677).

The server is checked against the RFC's test vector, then driven through the broker in memory
(every step, every refusal, re-authentication) and over a socket with a password file written
by `culex passwd --scram`.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from scram_client import ScramClient

from culex.auth import AuthChain, ScramCredential, ScramMethod, read_password_file
from culex.auth._scram import AuthenticationFailed, ScramExchange, parse_scram
from culex.broker import Broker
from culex.config import Config
from culex.protocol import (
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    Properties,
    ReasonCode,
    SubAck,
    Subscribe,
    SubscriptionRequest,
)

from support import (
    WAIT,
    FakeScheduler,
    MemoryClient,
    RawClient,
    bare,
    broker_with_config,
)

METHOD = "SCRAM-SHA-256"
CONTINUE = ReasonCode.CONTINUE_AUTHENTICATION


def test_rfc_7677_test_vector() -> None:
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    credential = ScramCredential.from_password(b"pencil", salt, 4096)
    exchange = ScramExchange({"user": credential}.get,
                             server_nonce="%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    assert exchange.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO") == (
        False, b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
               b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    assert exchange.step(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                         b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=") == (
        True, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    assert exchange.username == "user"


def test_verifier_text_round_trip_and_plain_password() -> None:
    credential = ScramCredential.from_password(b"secret", b"0123456789abcdef", 4096)
    text = credential.encode()
    assert text.startswith("SCRAM-SHA-256$4096:")
    assert parse_scram(text) == credential
    assert credential.verify(b"secret") and not credential.verify(b"Secret")
    for bad in ("SCRAM-SHA-256$x:AA==$AA==:AA==", "SCRAM-SHA-1$4096:AA==$AA==:AA==",
                text.replace(":", ";")):
        with pytest.raises(ValueError):
            parse_scram(bad)


def _exchange(user: str = "alice") -> ScramExchange:
    credential = ScramCredential.from_password(b"wonderland", b"salt-for-alice!!", 4096)
    return ScramExchange({"alice": credential}.get)


@pytest.mark.parametrize(("first", "final_edit"), [
    (b"p=tls-unique,,n=alice,r=abc", None),  # channel binding: not offered
    (b"n,a=admin,n=alice,r=abc", None),  # authorization identity: not supported
    (b"n,,r=abc", None),  # no user name
    (b"n,,n=al=ice,r=abc", None),  # "=" not escaped
    (b"n,,n=alice,r=abc", lambda text: text.replace(b"r=abc", b"r=abd")),  # nonce
    (b"n,,n=alice,r=abc", lambda text: text.replace(b"c=biws", b"c=eSws")),  # gs2 header
    (b"n,,n=alice,r=abc", lambda text: text[:-4] + b"AAA="),  # proof
    (b"n,,n=alice,r=abc", lambda text: text.split(b",p=")[0]),  # no proof
])
def test_bad_scram_messages_are_refused(first: bytes, final_edit: object) -> None:
    exchange = _exchange()
    with pytest.raises(AuthenticationFailed):
        done, server_first = exchange.step(first)
        assert not done and callable(final_edit)
        client = ScramClient("alice", "wonderland", nonce="abc")
        exchange.step(final_edit(client.final(server_first)))


def test_an_unknown_user_is_answered_like_a_known_one() -> None:
    exchange = _exchange()
    done, server_first = exchange.step(b"n,,n=mallory,r=abc")
    assert not done and b",s=" in server_first and b",i=" in server_first
    with pytest.raises(AuthenticationFailed, match="wrong user name or password"):
        exchange.step(ScramClient("mallory", "x", nonce="abc").final(server_first))


# -- through the broker, in memory ------------------------------------------------------------


def make_broker() -> Broker:
    credential = ScramCredential.from_password(b"wonderland", b"salt-for-alice!!", 4096)
    auth = AuthChain(methods=[ScramMethod({"alice": credential}.get)])
    config = Config()
    config.validate()
    return Broker(config, FakeScheduler(), auth)


def auth_props(data: bytes) -> Properties:
    return Properties(authentication_method=METHOD, authentication_data=data)


def scram_connect(broker: Broker, password: str = "wonderland",
                  extra: tuple[object, ...] = ()) -> tuple[MemoryClient, list[object]]:
    client = MemoryClient(broker, 5)
    scram = ScramClient("alice", password)
    client.send(Connect("c", 5, properties=auth_props(scram.first())))
    (challenge,) = client.received()
    assert isinstance(challenge, Auth) and challenge.reason_code == CONTINUE
    assert challenge.properties.authentication_method == METHOD  # MQTT-4.12.0-5
    data = challenge.properties.authentication_data
    assert data is not None
    client.send(Auth(CONTINUE, auth_props(scram.final(data))), *extra)  # type: ignore[arg-type]
    packets: list[object] = list(client.received())
    ack = packets[0]
    if isinstance(ack, ConnAck) and ack.reason_code == 0:
        final = ack.properties.authentication_data
        assert final is not None and scram.check(final)  # the server proved itself too
        assert ack.properties.authentication_method == METHOD
    return client, packets


def test_scram_exchange_at_connect() -> None:
    """MQTT-4.12.0-2, -5."""
    broker = make_broker()
    client, packets = scram_connect(broker)
    assert isinstance(packets[0], ConnAck) and packets[0].reason_code == 0
    assert client.conn.client is not None and client.conn.client.username == "alice"


def test_a_wrong_password_is_refused() -> None:
    """MQTT-4.12.0-4."""
    _, packets = scram_connect(make_broker(), password="looking-glass")
    assert isinstance(packets[0], ConnAck)
    assert packets[0].reason_code == ReasonCode.BAD_USER_NAME_OR_PASSWORD


def test_packets_sent_during_the_exchange_wait_for_the_connack() -> None:
    subscribe = Subscribe(1, [SubscriptionRequest("t", 1)])
    _, packets = scram_connect(make_broker(), extra=(subscribe,))
    assert [type(p) for p in packets] == [ConnAck, SubAck]  # MQTT 5.0 3.1.4: after CONNACK


def test_an_unknown_method_is_refused() -> None:
    """MQTT-4.12.0-1."""
    client = MemoryClient(make_broker(), 5)
    client.send(Connect("c", 5, properties=Properties(authentication_method="GS2-KRB5")))
    assert bare(client.received()) == [ConnAck(False, ReasonCode.BAD_AUTHENTICATION_METHOD)]


def test_auth_with_another_method_is_a_protocol_error() -> None:
    client = MemoryClient(make_broker(), 5)
    client.send(Connect("c", 5, properties=auth_props(ScramClient("alice", "x").first())))
    client.received()
    client.send(Auth(CONTINUE, Properties(authentication_method="OTHER",
                                          authentication_data=b"x")))
    assert bare(client.received()) == [ConnAck(False, ReasonCode.PROTOCOL_ERROR)]


def re_authenticate(password: str) -> tuple[ScramClient, list[object]]:
    """Connect as alice, then re-authenticate with ``password``: what the broker answers."""
    client, _ = scram_connect(make_broker())
    scram = ScramClient("alice", password, nonce="second")
    client.send(Auth(ReasonCode.RE_AUTHENTICATE, auth_props(scram.first())))
    (challenge,) = client.received()
    assert isinstance(challenge, Auth) and challenge.reason_code == CONTINUE
    data = challenge.properties.authentication_data
    assert data is not None
    client.send(Auth(CONTINUE, auth_props(scram.final(data))))
    return scram, list(client.received())


def test_re_authentication() -> None:
    """MQTT-3.15.2-1 (0x18, 0x00)."""
    scram, (done,) = re_authenticate("wonderland")
    assert isinstance(done, Auth) and done.reason_code == ReasonCode.SUCCESS
    final = done.properties.authentication_data
    assert final is not None and scram.check(final)


def test_failed_re_authentication_disconnects() -> None:
    """MQTT-4.12.1-2."""
    _, answer = re_authenticate("not-the-password")
    assert bare(answer) == [Disconnect(ReasonCode.NOT_AUTHORIZED)]


def test_continue_without_an_exchange_is_a_protocol_error() -> None:
    client, _ = scram_connect(make_broker())
    client.send(Auth(CONTINUE, auth_props(b"c=biws")))
    assert bare(client.received()) == [Disconnect(ReasonCode.PROTOCOL_ERROR)]


# -- over a socket, with a password file from `culex passwd --scram` ----------------------------


def test_scram_over_the_wire_with_culex_passwd(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    subprocess.run([sys.executable, "-m", "culex", "passwd", "-c", "-b", "--scram",
                    "--iterations", "4096", str(passwd), "alice", "wonderland"], check=True,
                   timeout=WAIT)
    (entry,) = read_password_file(passwd).values()
    assert isinstance(entry, ScramCredential) and entry.iterations == 4096
    config = f'password_file = "{passwd}"\n'
    with broker_with_config(tmp_path, config) as broker:
        raw = RawClient(broker.port, version=5)
        scram = ScramClient("alice", "wonderland")
        raw.send(Connect("scram", 5, properties=auth_props(scram.first())))
        challenge = raw.recv_packet()
        assert isinstance(challenge, Auth)
        data = challenge.properties.authentication_data
        assert data is not None
        raw.send(Auth(CONTINUE, auth_props(scram.final(data))))
        ack = raw.recv_packet()
        assert isinstance(ack, ConnAck) and ack.reason_code == 0
        final = ack.properties.authentication_data
        assert final is not None and scram.check(final)
        broker.wait_for_log(r"connected: client scram ")
        # The same line serves a plain user name and password.
        result = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port),
                                 "-u", "alice", "-P", "wonderland", "-t", "t", "-m", "x"],
                                capture_output=True, text=True, timeout=WAIT)
        assert result.returncode == 0, result.stderr
