#!/usr/bin/env python3
"""What the runtime culex stands on costs before culex does anything: an asyncio protocol on
uvloop that answers every read with a CONNACK, and nothing else, beside culex and Mosquitto,
for connections accepted per second and memory per idle connection (the shared load
generator's ``idle`` mode, a fresh server for each count), and a server's RSS at rest.

    python3 benchmarks/floors.py [--runs 3]

Loopback only; needs Debian's mosquitto and gcc (for the shared load generator). The figures
go to BENCHMARKS.md by hand (a section of their own, kept by benchmarks/run.py).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from retained import connect, free_port, rss_kb

ROOT = Path(__file__).resolve().parent.parent
MQBENCH = ROOT.parent / "shared" / "bench" / "mqbench.c"
COUNTS = (1000, 10000)

# The floor: what uvloop and asyncio cost per connection with no MQTT in it. It keeps what
# culex keeps of its peer (its address, as text).
BARE = """
import asyncio, sys, uvloop

class Bare:
    def connection_made(self, transport):
        self.transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = f"{host}:{port}"

    def data_received(self, data):
        self.transport.write(b"\\x20\\x02\\x00\\x00")  # CONNACK, whatever was read

    def eof_received(self):
        return None

    def connection_lost(self, exc):
        pass

async def main():
    await asyncio.get_running_loop().create_server(Bare, "127.0.0.1", int(sys.argv[1]),
                                                   backlog=4096)
    await asyncio.Event().wait()

uvloop.run(main())
"""


def idle(mqbench: Path, cmd: list[str], port: int, count: int) -> tuple[float, float, int]:
    """Connections per second, KB per connection, and the fresh server's RSS (KB)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        connect(port, "ready").close()
        time.sleep(0.5)  # the probe connection's end settles
        rest = rss_kb(proc.pid)
        out = subprocess.run([str(mqbench), "idle", "-p", str(port), "-B", str(proc.pid),
                              "-c", str(count), "-H", "1"], capture_output=True, text=True,
                             check=True).stdout
    finally:
        proc.terminate()
        proc.wait(10)
    fields = dict(re.findall(r"(\w+)=([\d.]+)", out))
    alive = int(fields["alive_after_hold"])
    if alive != count:
        raise SystemExit(f"floors: {cmd[0]}: only {alive} of {count} connections alive")
    return (float(fields["conn_per_s"]),
            (int(fields["broker_rss_kb_held"]) - int(fields["broker_rss_kb_before"])) / count,
            rest)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="medians of this many")
    args = parser.parse_args()
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(mosquitto).exists() or not MQBENCH.exists():
        print(f"benchmarks: needs mosquitto and {MQBENCH}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="floors-") as tmp:
        mqbench = Path(tmp) / "mqbench"
        subprocess.run(["gcc", "-O2", "-o", str(mqbench), str(MQBENCH)], check=True)
        bare = Path(tmp) / "bare.py"
        bare.write_text(BARE)
        conf = Path(tmp) / "mosquitto.conf"
        servers = {
            "mosquitto": lambda port: [mosquitto, "-c", str(conf)],
            "uvloop alone": lambda port: [sys.executable, str(bare), str(port)],
            # As the yardstick runs it (warnings only in the log: not a line per connection).
            "culex": lambda port: [sys.executable, "-m", "culex", "serve", "--config",
                                   str(ROOT / "benchmarks" / "culex-bench.toml"), "--listen",
                                   f"127.0.0.1:{port}", "--no-persistence"],
        }
        print(f"medians of {args.runs} runs; idle connections held by the shared load "
              "generator, a fresh server each time")
        print(f"{'server':14} {'connects/s 1k':>14} {'10k':>8} {'KB/conn 1k':>11} {'10k':>6} "
              f"{'RSS at rest MB':>15}")
        for name, cmd in servers.items():
            rates: dict[int, list[float]] = {count: [] for count in COUNTS}
            sizes: dict[int, list[float]] = {count: [] for count in COUNTS}
            rests: list[int] = []
            for _ in range(args.runs):
                for count in COUNTS:
                    port = free_port()
                    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                                    "persistence false\nlog_dest none\n"
                                    "max_connections -1\n")
                    rate, size, rest = idle(mqbench, cmd(port), port, count)
                    rates[count].append(rate)
                    sizes[count].append(size)
                    rests.append(rest)
            med = statistics.median
            print(f"{name:14} {med(rates[1000]):14,.0f} {med(rates[10000]):8,.0f} "
                  f"{med(sizes[1000]):11.2f} {med(sizes[10000]):6.2f} "
                  f"{med(rests) / 1024:15.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
