"""The application: a running broker assembled from a configuration (authentication chain,
store and restore, counters, listeners), and the process's lifetime: start, serve, reload on
SIGHUP, stop on a signal. Transport only transports; the parts meet here."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
import time
from typing import Any

from . import __version__
from ._build import build
from .auth import AuthChain, Authenticator, AuthMethod, Authorizer
from .broker import Broker
from .config import Config, ConfigError, ListenerConfig
from .observability import Counters, SysTree, notify, reopen_logs
from .persistence import Store, StoreError, open_store
from .protocol import ReasonCode
from .transport import TLSListener, TLSStream, start_listener

log = logging.getLogger("culex")

STOP_FLUSH_TIMEOUT = 10  # seconds


def build_auth(config: Config, authenticators: list[Authenticator] | None = None,
               authorizers: list[Authorizer] | None = None,
               methods: list[AuthMethod] | None = None) -> AuthChain:
    """The plugin chain: the configured files first, then any plugins given in code."""
    chain = AuthChain(list(authenticators or []), list(authorizers or []), methods)
    if not (config.password_file or config.acl_file):
        return chain
    from .auth import (
        AclFileAuthorizer,
        AclFileError,
        PasswordFileAuthenticator,
        PasswordFileError,
        ScramMethod,
    )

    try:
        if config.password_file:
            passwords = PasswordFileAuthenticator(config.password_file)
            chain.authenticators.insert(0, passwords)
            # MQTT 5 enhanced authentication, for the users the file has a SCRAM line for.
            scram = ScramMethod(passwords.scram_credential)
            chain.methods.setdefault(scram.name, scram)
        if config.acl_file:
            chain.authorizers.insert(0, AclFileAuthorizer(config.acl_file))
    except (PasswordFileError, AclFileError) as exc:
        raise ConfigError(str(exc)) from None
    return chain


class StartError(Exception):
    """Something the broker needs at start is not there (the cluster's NATS servers)."""


class Server:
    """A broker and its listening sockets, on the running event loop."""

    def __init__(self, config: Config, authenticators: list[Authenticator] | None = None,
                 authorizers: list[Authorizer] | None = None,
                 store: Store | None = None, methods: list[AuthMethod] | None = None) -> None:
        self.config = config
        loop = asyncio.get_running_loop()
        # Everything that can be wrong in the files is found here, before any socket opens.
        auth = build_auth(config, authenticators, authorizers, methods)
        self.tls = {id(listener): TLSListener(listener)
                    for listener in config.listeners if listener.tls}
        if store is None and config.cluster is not None:
            # Sessions, retained and queued messages are the cluster's, in JetStream, so
            # that any node resumes any session: the persistence options do not apply.
            from .cluster import SessionStore

            store = SessionStore(config.cluster)
        self.store = store if store is not None else open_store(config)
        snapshot = self.store.load()  # StoreError if it cannot be used at all
        log.info("culex %s (%s)", __version__, build())
        log.info("persistence: %s", self.store.description)
        self.counters = Counters()
        self.broker = Broker(config, loop, auth, self.store, self.counters)
        self.store.start(loop, self.counters)
        self.broker.restore(snapshot, time.time())
        self.sys: SysTree | None = None
        self.bridges: Any = None
        self.cluster: Any = None  # the ClusterNode, with a [cluster] section
        self.config_path: str | None = None  # read again on SIGHUP, for the bridges
        self._reload_tasks: set[asyncio.Future[None]] = set()
        self._servers: list[Any] = []  # asyncio and websockets servers
        # MQTTProtocol and WebSocketSink -> their listener (the configuration's own object,
        # shared: a name made per connection cost 64 bytes each)
        self._protocols: dict[Any, ListenerConfig | None] = {}
        self._http: list[set[Any]] = []  # each HTTP listener's open connections
        self._web: Any = None  # the HTTP application, made for the first HTTP listener
        self._dashboard_app: Any = None
        self._ready = False
        self._stopped = asyncio.Event()

    # -- the transport's Gate: admission under max_connections --------------------------------

    def admit(self, sink: Any, listener: ListenerConfig | None) -> bool:
        limit = self.config.max_connections
        if 0 <= limit <= len(self._protocols):
            return False
        self._protocols[sink] = listener
        return True

    def release(self, sink: Any) -> None:
        self._protocols.pop(sink, None)

    def not_ready(self) -> str | None:
        """Why the broker is not ready to serve (None: it is): for ``/ready``."""
        if self._stopped.is_set():
            return "stopping"
        if not self._ready:
            return "starting"
        if self.cluster is not None and not self.cluster.linked:
            return "cluster: no NATS server reachable"
        return self.store.trouble()

    async def start(self) -> list[tuple[str, int]]:
        """Join the cluster, if any, then open every listener; the (host, port) pairs
        actually bound."""
        bound: list[tuple[str, int]] = []
        if self.config.cluster is not None:
            await self._join_cluster()
        for listener in self.config.listeners:
            tls = self.tls.get(id(listener))
            if listener.protocol == "http":
                server, kind = await self._start_http(listener, tls)
            else:
                server, kind = await start_listener(self.broker, self, listener, tls)
            self._servers.append(server)
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                bound.append((host, port))
                log.info("listening on %s:%d (%s)", host, port, kind)
            self._warn_about(listener)
        if self.config.sys_interval:
            self.sys = SysTree(self.counters, self.broker.gauges, self.broker.publish_sys,
                               asyncio.get_running_loop(), self.config.sys_interval,
                               __version__, self._cluster_sys)
            self.sys.start()
        if self.config.bridges:
            from .bridge import Bridges  # the client and the links only if configured

            self.bridges = Bridges(self.config.bridges, self.broker)
            self.bridges.start()
        self._ready = True
        return bound

    async def _join_cluster(self) -> None:
        from .cluster import ClusterNode  # nats-py only if configured

        assert self.config.cluster is not None
        self.cluster = ClusterNode(self.config.cluster, self.broker)
        try:
            await self.cluster.start()
        except Exception as exc:  # nats-py's own errors: unreachable, refused, JetStream off
            servers = ", ".join(self.config.cluster.servers)
            self.cluster = None
            raise StartError(f"cannot join the cluster through {servers}: "
                             f"{exc or type(exc).__name__}") from None

    async def _start_http(self, listener: ListenerConfig, tls: TLSListener | None
                          ) -> tuple[Any, str]:
        from .web import start_http_listener  # h11 and prometheus_client only if used

        loop = asyncio.get_running_loop()
        wrap = None if tls is None else \
            (lambda protocol: TLSStream(protocol, tls, self.counters, loop))
        dashboard = self._dashboard() if listener.dashboard else None
        handler = self._web_app().handler(self.config.anonymous_allowed(listener), dashboard)
        server, connections = await start_http_listener(handler, listener.bind_address,
                                                        listener.port, wrap)
        self._http.append(connections)
        return server, "HTTPS" if tls else "HTTP"

    def _web_app(self) -> Any:
        if self._web is None:
            from .observability.prometheus import BrokerCollector, Exposition, ListenerState
            from .web import Logins, WebApp

            states = [ListenerState(listener.name, listener.protocol,
                                    self._connections_counter(listener))
                      for listener in self.config.listeners if listener.protocol != "http"]
            collector = BrokerCollector(self.counters, self.broker.gauges, states,
                                        __version__, self._bridge_states, self._cluster_state)

            async def delay(peer: str) -> None:
                seconds = self.broker.login_delay(peer)
                if seconds:
                    await asyncio.sleep(seconds)

            logins = Logins(self.broker.auth, delay, self.broker.login_failed, self.counters,
                            self.config.dashboard_users)
            self._web = WebApp(Exposition(collector), logins, self.not_ready)
        return self._web

    def _dashboard(self) -> Any:
        if self._dashboard_app is None:
            from .web import Dashboard, DashboardView

            logins = self._web_app().logins
            self._dashboard_app = Dashboard(
                DashboardView(self.broker, self.counters, self._cluster_state),
                logins.dashboard, logins.may)
            self._dashboard_app.start(asyncio.get_running_loop())
        return self._dashboard_app

    def _cluster_state(self) -> dict[str, Any] | None:
        """This node and the cluster (None: a single node)."""
        return self.cluster.describe() if self.cluster is not None else None

    def _cluster_sys(self) -> dict[str, str]:
        """The cluster's $SYS values, below $SYS/broker/ (none for a single node)."""
        state = self._cluster_state()
        if state is None:
            return {}
        return {"cluster/node": state["node"], "cluster/nodes": str(len(state["nodes"])),
                "cluster/nodes/names": json.dumps(state["nodes"]),
                "cluster/connected": str(int(state["connected"])),
                "cluster/messages/sent": str(state["sent"]),
                "cluster/messages/received": str(state["received"])}

    def _bridge_states(self) -> list[tuple[str, bool]]:
        links = self.bridges.links if self.bridges is not None else []
        return [(link.config.name, link.connected) for link in links]

    def _connections_counter(self, listener: ListenerConfig) -> Any:
        return lambda: sum(1 for owner in self._protocols.values() if owner is listener)

    def _warn_about(self, listener: ListenerConfig) -> None:
        anonymous = self.config.anonymous_allowed(listener)
        if listener.is_loopback:
            return
        if anonymous:
            log.warning("listener %s is reachable from the network and allows anonymous "
                        "clients", listener.name)
        elif not (self.broker.auth.authenticators or listener.use_identity_as_username
                  or listener.use_subject_as_username):
            log.warning("listener %s refuses anonymous clients and no authentication is "
                        "configured: every client will be refused (set password_file, "
                        "client certificates, or allow_anonymous)", listener.name)

    def reload(self) -> None:
        notify("RELOADING=1")
        reopen_logs()
        log.info("SIGHUP: reloading password file, ACL file and certificates; log file "
                 "reopened")
        self.broker.reload_auth()
        for tls in self.tls.values():
            tls.reload()
        if self.config_path is not None:
            self._reload_tasks.add(asyncio.ensure_future(self._reload_bridges()))
        notify("READY=1")

    async def _reload_bridges(self) -> None:
        """SIGHUP: the configuration file is read again and its bridges added, removed or
        changed (nothing else of it takes effect before a restart)."""
        from .configfile import read_config

        try:
            config, _ = read_config(self.config_path)  # type: ignore[arg-type]
        except ConfigError as exc:
            log.error("reload: the configuration file has problems, bridges unchanged: %s",
                      exc)
            return
        if self.bridges is None and config.bridges:
            from .bridge import Bridges

            self.bridges = Bridges([], self.broker)
        if self.bridges is not None:
            await self.bridges.update(config.bridges)

    def stop(self) -> None:
        notify("STOPPING=1")
        self._stopped.set()

    async def serve_until_stopped(self) -> None:
        await self._stopped.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        if self.sys is not None:
            self.sys.stop()
        if self.bridges is not None:
            await self.bridges.stop()
        if self._dashboard_app is not None:
            self._dashboard_app.close()
        for server in self._servers:
            server.close()
        # Acknowledgements waiting for the disk go out before the connections close (unless
        # the disk has been refusing writes: a stop must not wait for it forever).
        try:
            await asyncio.wait_for(self.store.flush(), STOP_FLUSH_TIMEOUT)
        except TimeoutError:
            log.error("the store could not be written within %ds; stopping anyway",
                      STOP_FLUSH_TIMEOUT)
        # v5 clients are told why (MQTT 4.13). As for any close the client did not ask for,
        # wills are published (MQTT 5.0 3.1.2.5).
        self.broker.close_all(ReasonCode.SERVER_SHUTTING_DOWN, "server shutting down")
        for protocol in list(self._protocols):
            protocol.close()
        for connections in self._http:
            for connection in list(connections):
                connection.close()
        for server in self._servers:
            await server.wait_closed()
        if self.cluster is not None:
            await self.cluster.stop()
        await self.store.close()  # what the wills and disconnections changed, then the file
        log.info("stopped")


async def serve(config: Config, path: str | None = None) -> None:
    # What is alive now (modules, classes, the configuration) lives as long as the process:
    # out of the cyclic collector's sight, it is not traversed again by every full
    # collection. And the youngest generation is collected every 50,000 allocations instead
    # of 700: each collection traverses every object made since the last one that is still
    # alive, so frequent ones keep re-traversing the connections and messages of a burst
    # (measured in a connection storm: 4% of the broker's instructions per connection).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)
    try:
        server = Server(config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"culex: configuration error: {problem}", file=sys.stderr)
        raise SystemExit(2) from None
    except StoreError as exc:
        print(f"culex: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    server.config_path = path
    # Signals are handled from here on: a stop asked during the start waits for it to end.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.stop)
    loop.add_signal_handler(signal.SIGHUP, server.reload)
    pid_file = config.pid_file
    try:
        if pid_file:
            _write_pid_file(pid_file)
        bound = await server.start()
    except StartError as exc:
        print(f"culex: {exc}", file=sys.stderr)
        await server.shutdown()
        _remove_pid_file(pid_file)
        raise SystemExit(1) from None
    except OSError as exc:
        what = f"write pid_file {pid_file}" if pid_file and exc.filename == pid_file \
            else "listen"
        print(f"culex: cannot {what}: {exc.strerror or exc}", file=sys.stderr)
        await server.shutdown()
        _remove_pid_file(pid_file)
        raise SystemExit(1) from None
    where = ", ".join(f"{host}:{port}" for host, port in bound)
    notify(f"READY=1\nSTATUS=listening on {where}")
    try:
        await server.serve_until_stopped()
    finally:
        _remove_pid_file(pid_file)


def _write_pid_file(path: str) -> None:
    with open(path, "w") as file:
        file.write(f"{os.getpid()}\n")


def _remove_pid_file(path: str | None) -> None:
    if path:
        with contextlib.suppress(OSError):
            os.remove(path)


def run(config: Config, path: str | None = None) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(config, path))
    else:
        uvloop.run(serve(config, path))
