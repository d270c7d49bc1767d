"""Passwords and ACLs enforced by a running broker, in MQTT 3.1.1 and 5."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from culex.protocol import (
    ConnAck,
    Connect,
    PubAck,
    Publish,
    ReasonCode,
    SubAck,
    Subscribe,
    SubscriptionRequest,
)

from support import BrokerProcess, RawClient, bare, broker_with_config

ACL = """\
topic read public/#
user admin
topic readwrite #
user alice
topic readwrite home/#
topic deny home/secret
user bob
topic read home/#
pattern write devices/%u/#
"""


def add_user(path: Path, name: str, password: str, *, tool: str = "culex") -> None:
    if tool == "mosquitto":
        cmd = ["mosquitto_passwd", "-b", str(path), name, password]
    else:
        cmd = [sys.executable, "-m", "culex", "passwd", "-b", "--iterations", "1000",
               str(path), name, password]
    if not path.exists():
        cmd.insert(cmd.index("-b"), "-c")
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


@pytest.fixture
def secured(tmp_path: Path) -> BrokerProcess:
    assert shutil.which("mosquitto_passwd"), "mosquitto is needed: run scripts/test"
    passwd = tmp_path / "passwd"
    add_user(passwd, "admin", "admin-pw")
    add_user(passwd, "alice", "alice-pw")
    add_user(passwd, "bob", "bob-pw", tool="mosquitto")  # brought along from Mosquitto
    (tmp_path / "acl").write_text(ACL)
    config = 'password_file = "passwd"\nacl_file = "acl"\nallow_anonymous = true\n'
    with broker_with_config(tmp_path, config) as broker:
        yield broker  # type: ignore[misc]


def login(port: int, version: int, user: str | None, password: str | None,
          client_id: str | None = None) -> tuple[RawClient, ConnAck]:
    client = RawClient(port, version)
    client.send(Connect(client_id or f"{user}-{version}", version, username=user,
                        password=None if password is None else password.encode()))
    ack = client.recv_packet()
    assert isinstance(ack, ConnAck)
    return client, ack


@pytest.mark.parametrize("version", [4, 5])
def test_connack_codes(secured: BrokerProcess, version: int) -> None:
    bad = ReasonCode.BAD_USER_NAME_OR_PASSWORD if version == 5 else 4
    assert login(secured.port, version, "alice", "alice-pw")[1].reason_code == 0
    assert login(secured.port, version, "bob", "bob-pw")[1].reason_code == 0
    assert bare([login(secured.port, version, "alice", "wrong")[1]]) == [ConnAck(False, bad)]
    assert bare([login(secured.port, version, "nobody", "x")[1]]) == [ConnAck(False, bad)]
    assert login(secured.port, version, None, None)[1].reason_code == 0  # allowed here
    line = secured.wait_for_log(r"refused: connection from 127\.0\.0\.1:\d+: client "
                                r"'alice-\d', user 'alice': bad user name or password")
    assert "wrong" not in "".join(secured.lines) and "alice-pw" not in line


@pytest.mark.parametrize("version", [4, 5])
def test_anonymous_refused_where_not_allowed(tmp_path: Path, version: int) -> None:
    add_user(tmp_path / "passwd", "alice", "pw")
    config = 'password_file = "passwd"\nallow_anonymous = false\n'
    with broker_with_config(tmp_path, config) as broker:
        code = ReasonCode.NOT_AUTHORIZED if version == 5 else 5
        assert bare([login(broker.port, version, None, None)[1]]) == [ConnAck(False, code)]
        assert login(broker.port, version, "alice", "pw")[1].reason_code == 0
        broker.wait_for_log(r"refused: .*anonymous clients are not allowed")


def subscribe(client: RawClient, topic_filter: str, pid: int = 1) -> int:
    client.send(Subscribe(pid, [SubscriptionRequest(topic_filter, 1)]))
    ack = client.recv_packet()
    assert isinstance(ack, SubAck)
    return ack.reason_codes[0]


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize(("user", "topic_filter", "allowed"), [
    ("alice", "home/#", True),
    ("alice", "home/secret", False),
    ("alice", "#", False),
    ("alice", "$SYS/#", False),
    ("bob", "home/+/temp", True),
    ("bob", "devices/bob/#", False),  # write-only
    (None, "public/#", True),
    (None, "home/#", False),
    ("admin", "#", True),
])
def test_subscribe_matrix(secured: BrokerProcess, version: int, user: str | None,
                          topic_filter: str, allowed: bool) -> None:
    client, _ = login(secured.port, version, user, f"{user}-pw" if user else None)
    refused = ReasonCode.NOT_AUTHORIZED if version == 5 else 0x80
    assert subscribe(client, topic_filter) == (1 if allowed else refused)


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize(("user", "topic", "allowed"), [
    ("alice", "home/kitchen", True),
    ("alice", "home/secret", False),
    ("alice", "public/news", False),
    ("bob", "home/kitchen", False),
    ("bob", "devices/bob/temp", True),
    ("bob", "devices/alice/temp", False),
    (None, "public/news", False),
])
def test_publish_matrix(secured: BrokerProcess, version: int, user: str | None, topic: str,
                        allowed: bool) -> None:
    """3.1.1: MQTT-3.3.5-2 (a refused 3.1.1 publish is acknowledged and dropped)."""
    watcher, _ = login(secured.port, 4, "admin", "admin-pw", "watcher")
    assert subscribe(watcher, "#") == 1
    client, _ = login(secured.port, version, user, f"{user}-pw" if user else None)
    client.send(Publish(topic, b"attempt", 1, packet_id=1))
    ack = client.recv_packet()
    if version == 5:
        assert ack == PubAck(1, 0 if allowed else ReasonCode.NOT_AUTHORIZED)
    else:
        assert ack == PubAck(1)  # 3.1.1 cannot say no: the message is dropped
    watcher.send(Publish("marker", b"end", 1, packet_id=1))
    seen = []
    while True:
        packet = watcher.recv_packet()
        if isinstance(packet, Publish):
            seen.append(packet.topic)
            if packet.topic == "marker":
                break
    assert seen == ([topic, "marker"] if allowed else ["marker"])


@pytest.mark.parametrize("version", [4, 5])
def test_delivery_and_retained_are_checked(secured: BrokerProcess, version: int) -> None:
    admin, _ = login(secured.port, 4, "admin", "admin-pw", "admin")
    admin.send(Publish("home/secret", b"s", 1, True, packet_id=1),
               Publish("home/lamp", b"on", 1, True, packet_id=2))
    assert [admin.recv_packet(), admin.recv_packet()] == [PubAck(1), PubAck(2)]
    alice, _ = login(secured.port, version, "alice", "alice-pw")
    assert subscribe(alice, "home/#") == 1
    retained = alice.recv_packet()
    assert isinstance(retained, Publish) and retained.topic == "home/lamp"  # not home/secret
    admin.send(Publish("home/secret", b"s2", 0), Publish("home/door", b"open", 0))
    live = alice.recv_packet()
    assert isinstance(live, Publish) and live.topic == "home/door"


def test_sighup_reloads_files(secured: BrokerProcess, tmp_path: Path) -> None:
    assert login(secured.port, 5, "carol", "carol-pw")[1].reason_code != 0
    add_user(tmp_path / "passwd", "carol", "carol-pw")
    (tmp_path / "acl").write_text(ACL + "user carol\ntopic read carol/#\n")
    assert secured.proc is not None
    secured.proc.send_signal(signal.SIGHUP)
    secured.wait_for_log(r"reloaded ACL file")
    carol, ack = login(secured.port, 5, "carol", "carol-pw")
    assert ack.reason_code == 0
    assert subscribe(carol, "carol/#") == 1
    # A broken file is reported and the previous one stays in force.
    (tmp_path / "passwd").write_text("carol\n")
    secured.proc.send_signal(signal.SIGHUP)
    secured.wait_for_log(r"reload of PasswordFileAuthenticator failed, keeping the previous")
    assert login(secured.port, 5, "carol", "carol-pw", "carol2")[1].reason_code == 0
    carol.send(Publish("carol/x", b"", 1, packet_id=5))  # open connections are untouched
    assert carol.recv_packet() == PubAck(5, ReasonCode.NOT_AUTHORIZED)
