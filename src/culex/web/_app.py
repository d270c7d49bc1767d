"""What the HTTP listener serves: ``/metrics`` for Prometheus, ``/health`` and ``/ready`` for
service managers and load balancers.

``/metrics`` is for the people allowed to watch the broker: on a listener where anonymous
clients are not allowed (any listener off loopback, unless configured otherwise), a request
must carry HTTP basic credentials that the password file (or any authenticator plugin) accepts,
for a user the ACL lets read ``$SYS/#``. Failed logins slow their address down exactly as
failed MQTT logins do, and share their count. ``/health`` and ``/ready`` say only "ok" or why
not, and ask nobody for a password (probes rarely have one).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..auth import Action, ClientInfo
from ..observability.prometheus import CONTENT_TYPE
from ._page import Assets
from ._server import Request, Response

if TYPE_CHECKING:
    from ..auth import AuthChain
    from ..observability import Counters
    from ..observability.prometheus import Exposition
    from ._dashboard import Dashboard

log = logging.getLogger("culex")

CHALLENGE = [("www-authenticate", 'Basic realm="culex", charset="UTF-8"')]


class Logins:
    """HTTP basic credentials checked like an MQTT login: same authenticators, same
    slow-down for addresses that fail, same counters."""

    def __init__(self, auth: AuthChain, delay: Callable[[str], Awaitable[None]],
                 failed: Callable[[str], None], counters: Counters,
                 dashboard_users: list[str] | None = None) -> None:
        self._auth = auth
        self._delay = delay
        self._failed = failed
        self._counters = counters
        self._dashboard_users = None if dashboard_users is None else set(dashboard_users)

    async def check(self, header: str | None, peer: str, anonymous: bool) -> bool:
        if header is None:
            return anonymous
        credentials = _basic(header)
        if credentials is None:
            return False
        return await self.credentials(*credentials, peer)

    async def credentials(self, username: str, password: str, peer: str) -> bool:
        """Whether a user of the password file may watch the broker (reads ``$SYS/#``)."""
        return await self._login(username, password, peer, None)

    async def dashboard(self, username: str, password: str, peer: str) -> bool:
        """Whether a user may sign in to the dashboard: one of ``dashboard_users`` where that
        list is configured, else (as for /metrics) one the ACL lets read ``$SYS/#``."""
        return await self._login(username, password, peer, self._dashboard_users)

    async def _login(self, username: str, password: str, peer: str,
                     allowed: set[str] | None) -> bool:
        await self._delay(peer)
        client = ClientInfo("http", username, password.encode(), peer, 0)
        reason = await self._auth.authenticate(client, allow_anonymous=False)
        granted = self._auth.authorize(client, Action.SUBSCRIBE, "$SYS/#") if allowed is None \
            else username in allowed
        if reason is None and granted:
            self._counters.auth_successes += 1
            return True
        why = "bad user name or password" if reason is not None \
            else "the ACL does not let it read $SYS/#" if allowed is None \
            else "not one of dashboard_users"
        log.warning("refused: HTTP request from %s: user %r: %s", peer, username, why,
                    extra={"event": "http_refused", "peer": peer, "reason": why})
        self._counters.auth_failures += 1
        self._failed(peer)
        return False


    def may(self, username: str, action: Action, topic: str) -> bool:
        """What the ACL lets ``username`` do, as it would an MQTT client of that user."""
        return self._auth.authorize(ClientInfo("dashboard", username, None, "", 5), action,
                                    topic)


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


class WebApp:
    def __init__(self, exposition: Exposition, logins: Logins,
                 not_ready: Callable[[], str | None]) -> None:
        self._exposition = exposition
        self.logins = logins  # the dashboard checks its sign-ins with the same
        self._not_ready = not_ready

    def handler(self, anonymous: bool, dashboard: Dashboard | None = None
                ) -> Callable[[Request], Awaitable[Response]]:
        """The request handler of a listener (``anonymous``: whether /metrics needs no
        login; ``dashboard``: the dashboard, if this listener serves it)."""

        assets = Assets() if dashboard is not None else None

        async def handle(request: Request) -> Response:
            if dashboard is not None and assets is not None:
                page = assets.get(request.path) if request.method == "GET" else None
                if page is not None:
                    return page
                answer = await dashboard.handle(request)
                if answer is not None:
                    return answer
            return await self._handle(request, anonymous)

        return handle

    async def _handle(self, request: Request, anonymous: bool) -> Response:
        path = request.path
        if path not in ("/metrics", "/health", "/ready"):
            return Response(404, b"not found\n")
        if request.method != "GET":
            return Response(405, b"only GET\n", headers=[("allow", "GET")])
        if path == "/health":
            return Response(200, b"ok\n")
        if path == "/ready":
            why = self._not_ready()
            return Response(200, b"ready\n") if why is None else \
                Response(503, f"not ready: {why}\n".encode())
        if not await self.logins.check(request.headers.get("authorization"), request.peer,
                                        anonymous):
            return Response(401, b"authentication required\n", headers=CHALLENGE)
        return Response(200, self._exposition.render(), content_type=CONTENT_TYPE)
