"""The dashboard's server side, over real HTTP: login in a cookie (HttpOnly, SameSite),
CSRF tokens on actions, the overview as server-sent events, clients (and disconnecting
one), retained messages (and deleting them). The pages themselves come with issue 15."""

from __future__ import annotations

import http.client
import json
import subprocess
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from paho_client import Paho
from support import WAIT, run_culex
from web_support import events, login, request, start_dashboard_broker


def test_login_csrf_clients_retained_and_events(tmp_path: Path) -> None:
    broker, port = start_dashboard_broker(tmp_path)
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


def test_topics_history_publish_and_subscribe_under_the_acl(tmp_path: Path) -> None:
    broker, port = start_dashboard_broker(tmp_path)
    try:
        _, cookie, csrf = login(port, "carol", "carol-pw")  # maison/salon/# only
        carol = {"Cookie": cookie, "X-CSRF-Token": csrf}
        _, cookie, csrf = login(port, "admin", "admin-pw")
        admin = {"Cookie": cookie, "X-CSRF-Token": csrf}
        for topic, value in (("maison/salon/temperature", "21.5"),
                             ("maison/cuisine/temperature", "19.0")):
            subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-u", "bob", "-P",
                            "bob-pw", "-t", topic, "-m", value, "-r"], check=True, timeout=WAIT)

        # The topic tree: every topic for admin, only what carol may read for her.
        seen = {t["topic"]: t for t in json.loads(
            request(port, "GET", "/api/topics", headers=admin)[2])["topics"]}
        assert seen["maison/salon/temperature"]["payload"] == "21.5"
        assert seen["maison/salon/temperature"]["retained"] is True
        assert seen["maison/salon/temperature"]["numeric"] is True
        assert [t["topic"] for t in json.loads(
            request(port, "GET", "/api/topics", headers=carol)[2])["topics"]] == [
            "maison/salon/temperature"]
        assert request(port, "GET", "/api/topic?name=maison/cuisine/temperature",
                       headers=carol)[0] == 404
        detail = json.loads(request(port, "GET", "/api/topic?name=maison/salon/temperature",
                                    headers=admin)[2])
        assert [value for _, value in detail["history"]] == [21.5]
        assert [m["topic"] for m in json.loads(
            request(port, "GET", "/api/retained?filter=%23", headers=carol)[2])] == [
            "maison/salon/temperature"]

        # Publishing from the browser: checked like an MQTT client of the same user.
        def publish(headers: dict[str, str], **body: Any) -> tuple[int, Any]:
            status, _, data = request(port, "POST", "/api/publish",
                                      json.dumps(body).encode(), headers)
            return status, json.loads(data)

        assert publish(carol, topic="maison/cuisine/x", payload="1")[0] == 403
        assert publish(admin, topic="$SYS/broker/uptime", payload="1")[0] == 403
        assert publish(admin, topic="maison/+", payload="1")[0] == 400
        assert publish(admin, topic="a\u0000b", payload="1")[0] == 400
        assert publish(admin, topic="maison/salon/x", payload="1", qos=3)[0] == 400
        assert publish({**admin, "X-CSRF-Token": "wrong"}, topic="t", payload="1")[0] == 403
        status, answer = publish(carol, topic="maison/salon/temperature", payload="22.0",
                                 qos=1)
        assert status == 200 and answer == {"subscribers": 0}

        # Subscribing from the browser: retained messages first, then live ones.
        assert request(port, "GET", "/api/subscribe?filter=%23", headers=carol)[0] == 403
        assert request(port, "GET", "/api/subscribe?filter=a/%23/b", headers=carol)[0] == 400
        assert request(port, "GET", "/api/subscribe?filter=$share/g/x", headers=admin)[0] == 400
        stream = events(port, "/api/subscribe?filter=maison/salon/%23", carol)
        assert next(stream)[0] == "subscribed"
        name, first = next(stream)
        assert name == "message" and first["topic"] == "maison/salon/temperature"
        assert first["payload"] == "21.5" and first["retain"] is True  # 22.0 was not retained
        publish(admin, topic="maison/salon/coffre", payload="18.5")  # not for carol
        publish(admin, topic="maison/salon/humidite", payload="50")
        name, second = next(stream)
        assert (second["topic"], second["payload"], second["retain"]) == (
            "maison/salon/humidite", "50", False)
        stream.close()

        # The overview's last hour, as columns.
        history = json.loads(request(port, "GET", "/api/history", headers=admin)[2])
        assert len(history["time"]) >= 1 and len(history["messages_in"]) == len(history["time"])
    finally:
        broker.stop()


def test_dashboard_users_replace_the_acl_grant(tmp_path: Path) -> None:
    broker, port = start_dashboard_broker(tmp_path, 'dashboard_users = ["bob"]')
    try:
        assert login(port, "bob", "bob-pw")[0] == 200  # no $SYS grant, but listed
        assert login(port, "admin", "admin-pw")[0] == 401  # granted by the ACL, not listed
        assert login(port, "bob", "wrong")[0] == 401
    finally:
        broker.stop()
    bad = tmp_path / "bad.toml"
    bad.write_text('dashboard_users = "bob"\n')
    result = run_culex("check-config", str(bad))
    assert result.returncode != 0 and "dashboard_users" in result.stdout + result.stderr
