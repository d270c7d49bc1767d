"""The dashboard's server side: logins kept in a cookie, protection against cross-site
requests, and the JSON and server-sent-event endpoints the pages read.

A login is a user of the password file whom the ACL lets read ``$SYS/#`` (the same check as
``/metrics``), or one of ``dashboard_users`` where that list is configured; its session lives
in this process only, behind a random token in an HttpOnly, SameSite=Strict cookie (Secure
over HTTPS), and ends after IDLE_HOURS without use or at logout. Every action (POST) must
also carry the session's CSRF token in an ``X-CSRF-Token`` header, which a page of another
site cannot read. No secret is ever put in a page: the CSRF token is given by
``/api/session`` to a script of this origin.

What a login sees of the traffic (topics, retained messages, the test client) and may publish is
what the ACL lets its user read and write, as for an MQTT client of that user.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from ..auth import Action
from ..protocol import is_valid_topic_name, parse_filter
from ._server import Request, Response

if TYPE_CHECKING:
    from ._topics import Watch
    from ._view import DashboardView

COOKIE = "culex_session"
IDLE_HOURS = 12
MAX_SESSIONS = 1000
EVENT_INTERVAL = 1.0  # seconds between overview events
TOPIC_INTERVAL = 0.25  # seconds between looks for changed topics
KEEPALIVE = 15.0  # seconds between comments on a quiet subscription stream
MAX_RETAINED_SENT = 1000  # retained messages a browser subscription starts with


@dataclass
class Login:
    username: str
    csrf: str
    last_used: float


class Logins:
    """The dashboard's sessions: token -> who, bounded, forgotten when idle."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: OrderedDict[str, Login] = OrderedDict()

    def open(self, username: str) -> tuple[str, Login]:
        token = secrets.token_urlsafe(32)
        login = Login(username, secrets.token_urlsafe(32), self._clock())
        self._sessions[token] = login
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)  # the least recently used goes first
        return token, login

    def find(self, request: Request) -> Login | None:
        token = _cookie(request.headers.get("cookie", ""), COOKIE)
        login = self._sessions.get(token) if token else None
        if login is None:
            return None
        now = self._clock()
        if now - login.last_used > IDLE_HOURS * 3600:
            del self._sessions[token]  # type: ignore[arg-type]
            return None
        login.last_used = now
        self._sessions.move_to_end(token)  # type: ignore[arg-type]
        return login

    def close(self, request: Request) -> None:
        token = _cookie(request.headers.get("cookie", ""), COOKIE)
        if token:
            self._sessions.pop(token, None)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def set_cookie(token: str, secure: bool, max_age: int | None = None) -> tuple[str, str]:
    attributes = [f"{COOKIE}={token}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if secure:
        attributes.append("Secure")
    if max_age is not None:
        attributes.append(f"Max-Age={max_age}")
    return ("set-cookie", "; ".join(attributes))


def json_response(data: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(data, ensure_ascii=False, allow_nan=False).encode(),
                    content_type="application/json; charset=utf-8")


class Dashboard:
    """Routes under ``/api/`` and the login; ``view`` answers what the broker holds."""

    def __init__(self, view: DashboardView,
                 check: Callable[[str, str, str], Awaitable[bool]],
                 may: Callable[[str, Action, str], bool]) -> None:
        self.view = view
        self._check = check  # (username, password, peer): may this user sign in?
        self._may = may  # (username, action, topic): what the ACL lets the user do
        self.logins = Logins()
        self._timer: asyncio.TimerHandle | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Record the overview every SAMPLE_SECONDS from now on (the last hour's charts)."""
        from ._view import SAMPLE_SECONDS

        def tick() -> None:
            self.view.recorder.sample()
            self._timer = loop.call_later(SAMPLE_SECONDS, tick)

        tick()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.view.close()

    async def handle(self, request: Request) -> Response | None:
        """The answer to a dashboard request, or None if the path is not the dashboard's."""
        path, method = request.path, request.method
        if path == "/login" and method == "POST":
            return await self._login(request)
        if not path.startswith("/api/"):
            return None
        login = self.logins.find(request)
        if login is None:
            return json_response({"error": "login required"}, 401)
        if method == "POST":
            if not secrets.compare_digest(request.headers.get("x-csrf-token", ""), login.csrf):
                return json_response({"error": "missing or wrong X-CSRF-Token"}, 403)
            return self._act(request, path, login)
        if method != "GET":
            return json_response({"error": "method not allowed"}, 405)
        return self._read(request, path, login)

    def _read(self, request: Request, path: str, login: Login) -> Response:
        query = request.query
        may_read = self._reader(login)
        if path == "/api/session":
            return json_response({"username": login.username, "csrf": login.csrf})
        if path == "/api/overview":
            return json_response(self.view.overview())
        if path == "/api/history":
            return json_response(self.view.history())
        if path == "/api/events":
            return Response(200, content_type="text/event-stream", stream=self._events(login))
        if path == "/api/clients":
            return json_response(self.view.clients())
        if path == "/api/topics":
            return json_response(self.view.topic_list(None, may_read))
        if path == "/api/topic":
            name = query.get("name", [""])[0]
            topic = self.view.topic(name) if name and may_read(name) else None
            return json_response(topic) if topic is not None else \
                json_response({"error": "no such topic"}, 404)
        if path == "/api/retained":
            topic_filter = query.get("filter", ["#"])[0]
            return json_response([entry for entry in self.view.retained(topic_filter)
                                  if may_read(entry["topic"])])
        if path == "/api/subscribe":
            return self._subscribe(query.get("filter", [""])[0], login)
        return json_response({"error": "not found"}, 404)

    def _reader(self, login: Login) -> Callable[[str], bool]:
        username, may = login.username, self._may
        return lambda topic: may(username, Action.RECEIVE, topic)

    async def _login(self, request: Request) -> Response:
        form = parse_qs(request.body.decode("utf-8", "replace"))
        username = form.get("username", [""])[0]
        password = form.get("password", [""])[0]
        if not username or not await self._check(username, password, request.peer):
            return json_response({"error": "wrong user name or password, or no access"}, 401)
        token, login = self.logins.open(username)
        response = json_response({"username": username, "csrf": login.csrf})
        response.headers.append(set_cookie(token, request.tls))
        return response

    def _act(self, request: Request, path: str, login: Login) -> Response:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return json_response({"error": "the body must be JSON"}, 400)
        if not isinstance(body, dict):
            return json_response({"error": "the body must be a JSON object"}, 400)
        if path == "/api/logout":
            self.logins.close(request)
            response = json_response({"ok": True})
            response.headers.append(set_cookie("", request.tls, max_age=0))
            return response
        if path == "/api/clients/disconnect":
            done = self.view.disconnect(str(body.get("client_id", "")))
            return json_response({"disconnected": done}, 200 if done else 404)
        if path == "/api/retained/delete":
            topic_filter = str(body.get("filter", ""))
            if not topic_filter:
                return json_response({"error": "a filter is needed"}, 400)
            try:
                parse_filter(topic_filter)
            except ValueError:
                return json_response({"error": "not a valid topic filter"}, 400)
            may_write = self._writer(login)
            mine = [entry["topic"] for entry in self.view.retained(topic_filter)]
            refused = [topic for topic in mine if not may_write(topic)]
            if refused:
                return json_response({"error": "the ACL does not let you publish to "
                                      + ", ".join(refused[:5])}, 403)
            topics = self.view.delete_retained(topic_filter)
            return json_response({"deleted": len(topics), "topics": topics[:1000]})
        if path == "/api/publish":
            return self._publish(body, login)
        return json_response({"error": "not found"}, 404)

    def _writer(self, login: Login) -> Callable[[str], bool]:
        username, may = login.username, self._may
        return lambda topic: may(username, Action.PUBLISH, topic)

    def _publish(self, body: dict[str, Any], login: Login) -> Response:
        """The browser test client publishes (as ``dashboard:<user>``, under the user's ACL)."""
        topic, payload = body.get("topic"), body.get("payload", "")
        qos, retain = body.get("qos", 0), body.get("retain", False)
        if not isinstance(topic, str) or not valid_topic(topic):
            return json_response({"error": "not a valid topic name (no wildcards, no U+0000, "
                                  "at most 65535 bytes of UTF-8)"}, 400)
        if topic == "$SYS" or topic.startswith("$SYS/"):
            return json_response({"error": "$SYS topics are the broker's"}, 403)
        if not isinstance(payload, str) or qos not in (0, 1, 2) or not isinstance(retain, bool):
            return json_response({"error": "payload is text, qos 0, 1 or 2, retain true or "
                                  "false"}, 400)
        if not self._may(login.username, Action.PUBLISH, topic):
            return json_response({"error": "the ACL does not let you publish there"}, 403)
        count = self.view.publish(topic, payload.encode(), qos, retain,
                                  "dashboard:" + login.username)
        return json_response({"subscribers": count})

    def _subscribe(self, topic_filter: str, login: Login) -> Response:
        try:
            group, _ = parse_filter(topic_filter)
        except ValueError:
            group = ""
        if group is not None or not valid_text(topic_filter):
            return json_response({"error": "not a valid topic filter (shared subscriptions "
                                  "are for MQTT clients)"}, 400)
        if not self._may(login.username, Action.SUBSCRIBE, topic_filter):
            return json_response({"error": "the ACL does not let you subscribe to that"}, 403)
        may_read = self._reader(login)
        watch = self.view.topics.watch(topic_filter, may_read)
        if watch is None:
            return json_response({"error": "too many browser subscriptions"}, 503)
        for message in self.view.retained_messages(topic_filter, MAX_RETAINED_SENT):
            if may_read(message.topic):
                watch.put(message.topic, message.payload, message.qos, True)
        return Response(200, content_type="text/event-stream", stream=self._messages(watch))

    async def _messages(self, watch: Watch) -> AsyncIterator[bytes]:
        """A browser subscription's messages as server-sent events, until it goes away."""
        from ._topics import payload_text

        try:
            yield b"event: subscribed\ndata: {}\n\n"
            while True:
                try:
                    topic, payload, qos, retain, size = await asyncio.wait_for(
                        watch.queue.get(), KEEPALIVE)
                except TimeoutError:
                    yield b": quiet\n\n"  # a write, to learn whether the browser is gone
                    continue
                text, binary = payload_text(payload)
                data = json.dumps({"topic": topic, "payload": text, "binary": binary,
                                   "size": size, "qos": qos, "retain": retain,
                                   "lost": watch.lost}, ensure_ascii=False)
                yield f"event: message\ndata: {data}\n\n".encode()
        finally:
            self.view.topics.unwatch(watch)

    async def _events(self, login: Login) -> AsyncIterator[bytes]:
        """While the page is open, as server-sent events: the topics changed, every
        TOPIC_INTERVAL (a new value shows within a second), and the overview every
        EVENT_INTERVAL."""
        seq: int | None = None
        may_read = self._reader(login)
        next_overview = 0.0
        while True:
            events = []
            now = time.monotonic()
            if now >= next_overview:
                next_overview = now + EVENT_INTERVAL
                overview = json.dumps(self.view.overview(), ensure_ascii=False,
                                      allow_nan=False)
                events.append(f"event: overview\ndata: {overview}\n\n")
            topics = self.view.topic_list(seq, may_read)
            if seq is None or topics["topics"]:
                events.append(f"event: topics\ndata: "
                              f"{json.dumps(topics, ensure_ascii=False)}\n\n")
            seq = topics["seq"]
            if events:
                yield "".join(events).encode()
            await asyncio.sleep(TOPIC_INTERVAL)


def valid_topic(topic: str) -> bool:
    """A topic name a client could publish to (MQTT-4.7.3-1, MQTT-3.3.2-2)."""
    return is_valid_topic_name(topic) and valid_text(topic)


def valid_text(text: str) -> bool:
    """A string MQTT can carry: UTF-8 without U+0000, at most 65535 bytes (MQTT-1.5.4-1,
    -2; MQTT-4.7.3-2, -3)."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate, from JSON's \ud800
        return False
    return "\0" not in text and size <= 65535
