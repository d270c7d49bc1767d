"""A broker with a dashboard, and plain HTTP requests to it (the API tests and the browser
tests share them)."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from support import WAIT, BrokerProcess, run_culex

# admin may watch the broker ($SYS) and use every topic; bob may use every topic but not watch;
# carol may watch, and use only maison/salon/#, less maison/salon/coffre.
ACL = ("user admin\ntopic read $SYS/#\ntopic readwrite #\n"
       "user bob\ntopic readwrite #\n"
       "user carol\ntopic read $SYS/#\ntopic readwrite maison/salon/#\n"
       "topic deny maison/salon/coffre\n")
USERS = ("admin", "bob", "carol")


def start_dashboard_broker(tmp_path: Path, extra: str = "") -> tuple[BrokerProcess, int]:
    """A broker (MQTT and an http listener with the dashboard) with the users above, each
    with password ``<user>-pw``; the broker and its HTTP port. ``extra``: more settings."""
    (tmp_path / "acl").write_text(ACL)
    passwd = tmp_path / "passwd"
    passwd.write_text("")
    for user in USERS:
        assert run_culex("passwd", "-b", str(passwd), user, f"{user}-pw", "--iterations",
                         "1000").returncode == 0
    config = tmp_path / "culex.toml"
    config.write_text(f'password_file = "{passwd}"\nacl_file = "{tmp_path / "acl"}"\n'
                      f"persistence = false\n{extra}\n"
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


def events(port: int, path: str, headers: dict[str, str]) -> Iterator[tuple[str, Any]]:
    """The server-sent events of ``path``, as (event, data)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    connection.request("GET", path, headers=headers)
    stream = connection.getresponse()
    assert stream.status == 200, stream.read()
    try:
        name = None
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                yield name or "", json.loads(line[6:])
    finally:
        connection.close()
