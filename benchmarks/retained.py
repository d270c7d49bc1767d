#!/usr/bin/env python3
"""A new subscriber to "maison/#" on 100,000 retained messages: how soon its first message
comes, how soon the last, and how much the broker grows; culex (this interpreter's) and
Mosquitto side by side.

    python3 benchmarks/retained.py [--count 100000]

Loopback only; needs Debian's mosquitto. The figures go to BENCHMARKS.md by hand (a section of
their own, kept by benchmarks/run.py).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from culex.protocol import (
    Connect,
    Decoder,
    PubAck,
    Publish,
    Subscribe,
    SubscriptionRequest,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def connect(port: int, client_id: str) -> socket.socket:
    deadline = time.monotonic() + 10
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    sock.sendall(Connect(client_id, 4).encode(4))
    sock.recv(4)  # CONNACK
    return sock


def measure(port: int, pid: int, count: int) -> str:
    loader = connect(port, "loader")
    loader.sendall(b"".join(Publish(f"maison/piece{i % 100}/capteur{i}", b"x" * 32,
                                    retain=True).encode(4) for i in range(count)))
    # A QoS 1 message after them: acknowledged once the broker has taken them all.
    loader.sendall(Publish("done", b"", qos=1, packet_id=1).encode(4))
    decoder = Decoder(version=4)
    while not isinstance(decoder.next_packet(), PubAck):
        decoder.feed(loader.recv(64))
    before = rss_kb(pid)
    start = time.perf_counter()
    sub = connect(port, "dashboard")
    sub.sendall(Subscribe(1, [SubscriptionRequest("maison/#")]).encode(4))
    decoder = Decoder(version=4)
    got, first, peak = 0, 0.0, before
    while got < count:
        decoder.feed(sub.recv(1 << 16))
        while (packet := decoder.next_packet()) is not None:
            if isinstance(packet, Publish):
                got += 1
                if got == 1:
                    first = time.perf_counter() - start
                    peak = rss_kb(pid)
    last = time.perf_counter() - start
    peak = max(peak, rss_kb(pid))
    sub.close()
    loader.close()
    return (f"first {first * 1000:6.0f} ms   all {last * 1000:6.0f} ms   "
            f"RSS growth {(peak - before) / 1024:5.1f} MB")


def run(cmd: list[str], port: int, count: int) -> str:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return measure(port, proc.pid, count)
    finally:
        proc.terminate()
        proc.wait(10)


def side_by_side(directory: str, mosquitto_options: str = "") -> list[tuple[str, list[str], int]]:
    """Mosquitto (in memory only, no log) and culex (this interpreter's, no persistence), each
    with its command and a free loopback port; SystemExit if Mosquitto is not installed."""
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(mosquitto).exists():
        raise SystemExit("benchmarks: Mosquitto is needed: apt-get install -y mosquitto")
    conf = Path(directory) / "mosquitto.conf"
    port = free_port()
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                    f"persistence false\nlog_dest none\n{mosquitto_options}")
    culex_port = free_port()
    return [("mosquitto", [mosquitto, "-c", str(conf)], port),
            ("culex", [sys.executable, "-m", "culex", "serve", "--listen",
                       f"127.0.0.1:{culex_port}", "--no-persistence"], culex_port)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="retained-") as tmp:
        print(f"{args.count:,} retained messages, a new subscriber to maison/#:")
        for name, cmd, port in side_by_side(tmp):
            print(f"{name:11}", run(cmd, port, args.count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
