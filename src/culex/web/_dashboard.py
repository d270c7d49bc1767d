"""The dashboard's server side: logins kept in a cookie, protection against cross-site
requests, and the JSON and server-sent-event endpoints the pages read.

A login is a user of the password file whom the ACL lets read ``$SYS/#`` (the same check as
``/metrics``); its session lives in this process only, behind a random token in an HttpOnly,
SameSite=Strict cookie (Secure over HTTPS), and ends after IDLE_HOURS without use or at
logout. Every action (POST) must also carry the session's CSRF token in an
``X-CSRF-Token`` header, which a page of another site cannot read. No secret is ever put in a
page: the CSRF token is given by ``/api/session`` to a script of this origin.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from ._server import Request, Response

COOKIE = "culex_session"
IDLE_HOURS = 12
MAX_SESSIONS = 1000
EVENT_INTERVAL = 1.0  # seconds between overview events


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
    return Response(status, json.dumps(data, ensure_ascii=False).encode(),
                    content_type="application/json; charset=utf-8")


class Dashboard:
    """Routes under ``/api/`` and the login; ``view`` answers what the broker holds."""

    def __init__(self, view: Any, check: Callable[[str, str, str], Any]) -> None:
        self.view = view  # overview(), clients(), disconnect(id), retained(f), delete(f)
        self._check = check  # async (username, password, peer) -> bool
        self.logins = Logins()

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
            return self._act(request, path)
        if method != "GET":
            return json_response({"error": "method not allowed"}, 405)
        if path == "/api/session":
            return json_response({"username": login.username, "csrf": login.csrf})
        if path == "/api/overview":
            return json_response(self.view.overview())
        if path == "/api/events":
            return Response(200, content_type="text/event-stream",
                            stream=self._events())
        if path == "/api/clients":
            return json_response(self.view.clients())
        if path == "/api/retained":
            topic_filter = request.query.get("filter", ["#"])[0]
            return json_response(self.view.retained(topic_filter))
        return json_response({"error": "not found"}, 404)

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

    def _act(self, request: Request, path: str) -> Response:
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
            return json_response({"deleted": self.view.delete_retained(topic_filter)})
        return json_response({"error": "not found"}, 404)

    async def _events(self) -> AsyncIterator[bytes]:
        """The overview once a second, as server-sent events, while the page is open."""
        while True:
            data = json.dumps(self.view.overview(), ensure_ascii=False)
            yield f"event: overview\ndata: {data}\n\n".encode()
            await asyncio.sleep(EVENT_INTERVAL)
