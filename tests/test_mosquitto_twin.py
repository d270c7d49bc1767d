"""A Mosquitto configuration and its TOML twin start brokers that behave the same (the same
checks run against both), and Debian's own /etc/mosquitto/mosquitto.conf starts culex."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from certs import CertSet
from paho_client import Paho
from support import WAIT, BrokerProcess, broker_env, run_culex

ACL = "user alice\ntopic readwrite alice/#\nuser bob\ntopic readwrite bob/#\n"
# Debian's /etc/mosquitto/mosquitto.conf as the mosquitto package installs it.
DEBIAN = """\
# Place your local configuration in /etc/mosquitto/conf.d/
#
# A full description of the configuration file is at
# /usr/share/doc/mosquitto/examples/mosquitto.conf.example

pid_file /run/mosquitto/mosquitto.pid

persistence true
persistence_location /var/lib/mosquitto/

log_dest file /var/log/mosquitto/mosquitto.log

include_dir /etc/mosquitto/conf.d
"""


def files(tmp_path: Path) -> tuple[Path, Path]:
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    passwd.write_text("")
    acl.write_text(ACL)
    for user in ("alice", "bob"):
        result = run_culex("passwd", "-b", str(passwd), user, f"{user}-pw", "--iterations",
                           "1000")
        assert result.returncode == 0, result.stderr
    return passwd, acl


def mosquitto_conf(tmp_path: Path, certs: CertSet) -> Path:
    passwd, acl = files(tmp_path)
    path = tmp_path / "mosquitto.conf"
    path.write_text(f"""\
# Listeners as the Mosquitto documentation shows them (ports chosen by the test).
listener 0 127.0.0.1

listener 0 127.0.0.1
certfile {certs.server.cert}
keyfile {certs.server.key}

listener 0 127.0.0.1
protocol websockets

allow_anonymous false
password_file {passwd}
acl_file {acl}
""")
    return path


def toml_twin(tmp_path: Path, certs: CertSet) -> Path:
    passwd, acl = files(tmp_path)
    path = tmp_path / "culex.toml"
    path.write_text(f"""\
allow_anonymous = false
password_file = "{passwd}"
acl_file = "{acl}"
persistence = false

[[listener]]
port = 0

[[listener]]
port = 0
certfile = "{certs.server.cert}"
keyfile = "{certs.server.key}"

[[listener]]
port = 0
protocol = "websockets"
""")
    return path


def port_of(broker: BrokerProcess, kind: str) -> int:
    line = broker.wait_for_log(rf"listening on 127\.0\.0\.1:\d+ \({kind}\)")
    match = re.search(r":(\d+) ", line)
    assert match
    return int(match.group(1))


@pytest.mark.parametrize("form", ["mosquitto.conf", "toml"])
def test_mosquitto_conf_and_its_toml_twin_behave_the_same(form: str, tmp_path: Path,
                                                           certs: CertSet) -> None:
    path = (mosquitto_conf if form == "mosquitto.conf" else toml_twin)(tmp_path, certs)
    broker = BrokerProcess("--config", str(path), listen=False).start()
    try:
        plain, tls, ws = (port_of(broker, kind) for kind in ("MQTT", "TLS", "WebSockets"))
        # Anonymous clients are refused (Mosquitto 2's default once listeners are set).
        anonymous = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="anon")
        codes: list[int] = []
        anonymous.on_connect = lambda c, u, f, reason, p: codes.append(reason.value)
        anonymous.connect("127.0.0.1", plain)
        while not codes:
            anonymous.loop(WAIT)
        assert codes == [135]  # CONNACK 5: not authorized
        # alice: her topics, not bob's (the ACL).
        alice = Paho(plain, mqtt.MQTTv311, "alice-sub", username="alice",
                     password="alice-pw").connect()
        assert [int(getattr(g, "value", g)) for g in alice.subscribe("alice/#", 1)] == [1]
        assert [int(getattr(g, "value", g)) for g in alice.subscribe("bob/#", 1)] == [128]
        # Through TLS, with the mosquitto tools.
        result = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(tls),
                                 "--cafile", certs.ca.cert, "-u", "alice", "-P", "alice-pw",
                                 "-t", "alice/tls", "-m", "over tls", "-q", "1"],
                                capture_output=True, text=True, timeout=WAIT)
        assert result.returncode == 0, result.stderr
        assert alice.get().payload == b"over tls"
        # Through WebSockets.
        web = Paho(ws, mqtt.MQTTv311, "alice-ws", username="alice", password="alice-pw",
                   transport="websockets").connect()
        web.publish("alice/ws", b"over websockets", qos=1)
        assert alice.get().payload == b"over websockets"
        wrong = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(plain), "-u",
                                "alice", "-P", "nope", "-t", "alice/x", "-m", "x"],
                               capture_output=True, text=True, timeout=WAIT)
        assert wrong.returncode != 0
        web.disconnect()
        alice.disconnect()
    finally:
        assert broker.stop() == 0


def wait_for_file_line(path: Path, pattern: str) -> str:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                if re.search(pattern, line):
                    return line
        time.sleep(0.02)  # polling a file: there is no event to wait on
    raise AssertionError(f"no line matching {pattern!r} in {path}")


def test_debians_default_configuration_starts_culex(tmp_path: Path) -> None:
    installed = Path("/etc/mosquitto/mosquitto.conf")
    text = installed.read_text() if installed.exists() else DEBIAN
    # The file as Debian ships it, its directories moved under the test's own.
    moves = {"/run/mosquitto/": "run/", "/var/lib/mosquitto/": "lib/",
             "/var/log/mosquitto/": "log/", "/etc/mosquitto/conf.d": "conf.d"}
    for old, new in moves.items():
        assert old in text, old
        (tmp_path / new).mkdir(parents=True, exist_ok=True)
        text = text.replace(old, f"{tmp_path}/{new}")
    (tmp_path / "mosquitto.conf").write_text(text)
    (tmp_path / "conf.d" / "local.conf").write_text("listener 0 127.0.0.1\n"
                                                    "allow_anonymous true\n")
    log = tmp_path / "log" / "mosquitto.log"
    proc = subprocess.Popen([sys.executable, "-m", "culex", "serve", "-c",
                             str(tmp_path / "mosquitto.conf")], stderr=subprocess.PIPE,
                            text=True, env=broker_env(str(tmp_path)))
    try:
        line = wait_for_file_line(log, r"listening on 127\.0\.0\.1:\d+")
        port = int(re.findall(r"127\.0\.0\.1:(\d+)", line)[0])
        assert (tmp_path / "run" / "mosquitto.pid").read_text() == f"{proc.pid}\n"
        client = Paho(port, mqtt.MQTTv311, "debian", clean=False).connect()
        client.subscribe("house/#", 1)
        client.publish("house/t", b"21", qos=1)
        assert client.get().payload == b"21"
        client.disconnect()
        # persistence true: the persistent session is kept in persistence_location.
        wait_for_file_line(log, "created the store")
        assert any((tmp_path / "lib").iterdir())
    finally:
        proc.terminate()
        proc.wait(WAIT)
    assert proc.returncode == 0
    assert not (tmp_path / "run" / "mosquitto.pid").exists()
