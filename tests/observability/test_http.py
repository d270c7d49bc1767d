"""The HTTP listener: /metrics read by prometheus_client's own parser, /health, /ready, basic
authentication against the password file and the ACL, HTTPS, and bad requests."""

from __future__ import annotations

import base64
import re
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from certs import CertSet
from paho_client import Paho
from support import WAIT, BrokerProcess, broker_with_config

MQTT = '[[listener]]\nport = 0\nbind_address = "127.0.0.1"\n'
HTTP = '[[listener]]\nport = 0\nbind_address = "127.0.0.1"\nprotocol = "http"\n'


def http_port(broker: BrokerProcess, kind: str = "HTTP") -> int:
    line = broker.wait_for_log(rf"listening on 127\.0\.0\.1:(\d+) \({kind}\)")
    match = re.search(r":(\d+) ", line)
    assert match
    return int(match.group(1))


def get(port: int, path: str, auth: tuple[str, str] | None = None,
        scheme: str = "http", context: ssl.SSLContext | None = None) -> tuple[int, str, dict]:
    request = urllib.request.Request(f"{scheme}://127.0.0.1:{port}{path}")
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=WAIT, context=context) as response:
            return response.status, response.read().decode(), _lower(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), _lower(error.headers)


def _lower(headers: object) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}  # type: ignore[attr-defined]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_metrics_parse_and_say_what_happened(tmp_path: Path) -> None:
    with broker_with_config(tmp_path, "sys_interval = 1\n" + MQTT + HTTP) as broker:
        port = http_port(broker)
        status, first, headers = get(port, "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
        families = list(text_string_to_metric_families(first))
        names = {family.name for family in families}
        for name in names:  # every metric has its HELP and TYPE lines
            assert re.search(rf"^# HELP {name}(_total)? \S", first, re.M), name
            assert re.search(rf"^# TYPE {name}(_total)? \w", first, re.M), name
        for wanted in ("culex_messages_received", "culex_connections_refused",
                       "culex_store_commit_duration_seconds", "culex_sessions",
                       "culex_listener_connections", "culex_tls_handshake_failures",
                       "process_cpu_seconds", "process_resident_memory_bytes"):
            assert wanted in names, wanted
        assert {family.type for family in families if family.name.startswith("culex_")} \
            == {"counter", "gauge", "histogram"}

        watcher = Paho(broker.port, mqtt.MQTTv311, "watcher").connect()
        watcher.subscribe("$SYS/broker/publish/messages/received")
        watcher.get()
        publisher = Paho(broker.port, mqtt.MQTTv311, "publisher").connect()
        for index in range(30):
            publisher.publish("m/t", b"x", qos=index % 3, retain=index == 0)
        while watcher.get().payload != b"30":  # $SYS has seen all 30
            pass
        second = samples(get(port, "/metrics")[1])
        received = sum(value for (name, labels), value in second.items()
                       if name == "culex_messages_received_total")
        assert received == 30  # as $SYS says at the same moment
        assert second[("culex_messages_received_total", (("qos", "1"),))] == 10
        assert second[("culex_clients_connected", ())] == 2
        assert second[("culex_retained_messages", ())] >= 1
        # Listeners are named as configured (port 0 here: any free port).
        assert second[("culex_listener_connections",
                       (("listener", "127.0.0.1:0"), ("protocol", "mqtt")))] == 2
        before = samples(first)
        for key, value in before.items():  # counters only grow
            if key[0].endswith(("_total", "_count", "_sum", "_bucket")) \
                    and key[0].startswith("culex_"):
                assert second[key] >= value, key
        publisher.disconnect()
        watcher.disconnect()


def test_health_ready_and_bad_requests(tmp_path: Path) -> None:
    with broker_with_config(tmp_path, MQTT + HTTP) as broker:
        port = http_port(broker)
        assert get(port, "/health")[:2] == (200, "ok\n")
        assert get(port, "/ready")[:2] == (200, "ready\n")
        assert get(port, "/nothing")[0] == 404
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
            raw.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            replies = b""
            while b"ok\n" not in replies:
                chunk = raw.recv(4096)
                assert chunk
                replies += chunk
            # Two answers on one kept-alive connection, in order.
            assert replies.startswith(b"HTTP/1.1 405 ") and b"HTTP/1.1 200 " in replies
        for garbage in (b"\x00\x01\x02 nonsense\r\n\r\n", b"GET / HTTP/1.1\r\n" + b"X: y\r\n"
                        * 2000 + b"\r\n"):
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
                raw.sendall(garbage)
                reply = b""
                while chunk := raw.recv(4096):
                    reply += chunk
                assert re.match(rb"HTTP/1.1 (400|431) ", reply), reply[:80]
        assert get(port, "/health")[0] == 200  # still serving
        broker.stop()
        assert not any("Traceback" in line for line in broker.lines)


@pytest.fixture
def secured(tmp_path: Path) -> Path:
    (tmp_path / "acl").write_text("user admin\ntopic read $SYS/#\nuser bob\ntopic read b/#\n")
    (tmp_path / "passwd").write_text("")
    for user in ("admin", "bob"):
        subprocess.run(["culex", "passwd", "-b", str(tmp_path / "passwd"), user, "pw-" + user,
                        "--iterations", "1000"], check=True, capture_output=True)
    return tmp_path


def test_metrics_need_a_user_the_acl_lets_read_sys(secured: Path) -> None:
    config = ('password_file = "passwd"\nacl_file = "acl"\n' + MQTT + HTTP
              + "allow_anonymous = false\n")
    with broker_with_config(secured, config) as broker:
        port = http_port(broker)
        status, _, headers = get(port, "/metrics")
        assert status == 401 and headers["www-authenticate"].startswith("Basic realm=")
        assert get(port, "/metrics", ("admin", "wrong"))[0] == 401
        assert get(port, "/metrics", ("bob", "pw-bob"))[0] == 401  # no $SYS read rule
        status, text, _ = get(port, "/metrics", ("admin", "pw-admin"))
        assert status == 200 and "culex_auth_failures_total 2.0" in text
        assert get(port, "/health")[0] == 200  # probes need no password
        broker.wait_for_log(r"refused: HTTP request from 127\.0\.0\.1:\d+: user 'bob'")


def test_https(certs: CertSet, tmp_path: Path) -> None:
    https = HTTP + f'certfile = "{certs.server.cert}"\nkeyfile = "{certs.server.key}"\n'
    with broker_with_config(tmp_path, MQTT + https) as broker:
        port = http_port(broker, "HTTPS")
        context = ssl.create_default_context(cafile=certs.ca.cert)
        context.check_hostname = False
        status, text, _ = get(port, "/metrics", scheme="https", context=context)
        assert status == 200 and "culex_bytes_received_total" in text
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            get(port, "/metrics")  # plain HTTP to the HTTPS port: no answer
        assert "http request" in broker.wait_for_log("TLS handshake failed")
