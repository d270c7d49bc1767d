"""The dashboard's server side, over real HTTP: login in a cookie (HttpOnly, SameSite),
CSRF tokens on actions, the overview as server-sent events, clients (and disconnecting
one), retained messages (and deleting them). The pages themselves come with issue 15."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt

from paho_client import Paho
from support import WAIT, BrokerProcess, run_culex


def start(tmp_path: Path) -> tuple[BrokerProcess, int]:
    (tmp_path / "acl").write_text("user admin\ntopic read $SYS/#\ntopic readwrite #\n"
                                  "user bob\ntopic readwrite #\n")
    passwd = tmp_path / "passwd"
    passwd.write_text("")
    for user in ("admin", "bob"):
        assert run_culex("passwd", "-b", str(passwd), user, f"{user}-pw", "--iterations",
                         "1000").returncode == 0
    config = tmp_path / "culex.toml"
    config.write_text(f'password_file = "{passwd}"\nacl_file = "{tmp_path / "acl"}"\n'
                      "persistence = false\n"
                      '[[listener]]\nport = 0\nbind_address = "127.0.0.1"\n'
                      '[[listener]]\nport = 0\nbind_address = "127.0.0.1"\nprotocol = "http"\n'
                      "dashboard = true\nallow_anonymous = false\n")
    broker = BrokerProcess("--config", str(config), listen=False).start()
    line = broker.wait_for_log(r"listening on 127\.0\.0\.1:\d+ \(HTTP\)")
    return broker, int(re.findall(r":(\d+) ", line)[0])


def request(port: int, method: str, path: str, body: bytes = b"",
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def login(port: int, user: str, password: str) -> tuple[int, str, str]:
    """(status, cookie, csrf token)."""
    status, headers, body = request(port, "POST", "/login",
                                    f"username={user}&password={password}".encode(),
                                    {"Content-Type": "application/x-www-form-urlencoded"})
    cookie = headers.get("set-cookie", "").split(";")[0]
    return status, cookie, json.loads(body).get("csrf", "")


def test_login_csrf_clients_retained_and_events(tmp_path: Path) -> None:
    broker, port = start(tmp_path)
    try:
        status, headers, page = request(port, "GET", "/")
        assert status == 200 and b"<title>culex</title>" in page
        assert "default-src 'none'" in headers["content-security-policy"]
        assert request(port, "GET", "/api/overview")[0] == 401  # no login, no figures
        assert login(port, "admin", "wrong")[0] == 401
        assert login(port, "bob", "bob-pw")[0] == 401  # no $SYS grant
        status, cookie, csrf = login(port, "admin", "admin-pw")
        assert status == 200 and cookie.startswith("culex_session=") and csrf
        raw = request(port, "POST", "/login", b"username=admin&password=admin-pw",
                      {"Content-Type": "application/x-www-form-urlencoded"})[1]["set-cookie"]
        assert "HttpOnly" in raw and "SameSite=Strict" in raw
        assert csrf.encode() not in page  # no secret in the page
        me = {"Cookie": cookie}
        assert json.loads(request(port, "GET", "/api/session", headers=me)[2])["csrf"] == csrf

        # Clients: one is listed, and disconnected from the dashboard (with the token only).
        client = Paho(broker.port, mqtt.MQTTv5, "kitchen", username="bob",
                      password="bob-pw").connect()
        listed = json.loads(request(port, "GET", "/api/clients", headers=me)[2])
        [kitchen] = [c for c in listed if c["client_id"] == "kitchen"]
        assert kitchen["connected"] and kitchen["username"] == "bob"
        assert kitchen["protocol"] == "5" and kitchen["peer"].startswith("127.0.0.1:")
        body = json.dumps({"client_id": "kitchen"}).encode()
        assert request(port, "POST", "/api/clients/disconnect", body, me)[0] == 403
        assert request(port, "POST", "/api/clients/disconnect", body,
                       {**me, "X-CSRF-Token": csrf})[0] == 200
        assert client.disconnected.wait(WAIT)
        assert str(client.disconnect_reason) == "Administrative action"  # DISCONNECT 0x98
        client.stop()

        # Retained messages: listed, then deleted for every later subscriber.
        for topic in ("maison/a", "maison/b"):
            subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-u", "bob", "-P",
                            "bob-pw", "-t", topic, "-m", "21", "-r"], check=True, timeout=WAIT)
        kept = json.loads(request(port, "GET", "/api/retained?filter=maison/%23",
                                  headers=me)[2])
        assert sorted(m["topic"] for m in kept) == ["maison/a", "maison/b"]
        answer = request(port, "POST", "/api/retained/delete",
                         json.dumps({"filter": "maison/#"}).encode(),
                         {**me, "X-CSRF-Token": csrf})
        assert json.loads(answer[2])["deleted"] == 2
        late = subprocess.run(["mosquitto_sub", "-p", str(broker.port), "-u", "bob", "-P",
                               "bob-pw", "-t", "maison/#", "-W", "1"], capture_output=True,
                              timeout=WAIT)
        assert late.stdout == b""

        # The overview, live: server-sent events.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
        connection.request("GET", "/api/events", headers=me)
        stream = connection.getresponse()
        assert stream.getheader("content-type") == "text/event-stream"
        assert stream.readline() == b"event: overview\n"
        data = json.loads(stream.readline().removeprefix(b"data: "))
        assert data["gauges"]["connected"] == 0 and "sample" in data  # kitchen was sent away
        connection.close()

        # Sign out: the cookie no longer opens anything.
        assert request(port, "POST", "/api/logout", b"{}",
                       {**me, "X-CSRF-Token": csrf})[0] == 200
        assert request(port, "GET", "/api/overview", headers=me)[0] == 401
    finally:
        broker.stop()
