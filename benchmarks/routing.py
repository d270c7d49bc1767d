#!/usr/bin/env python3
"""What routing state costs: a broker's growth for 50,000 subscriptions of one client, and
for 10,000 connections of one subscription each; culex (this interpreter's) and Mosquitto
side by side.

    python3 benchmarks/routing.py [--subscriptions 50000] [--connections 10000]

Loopback only; needs Debian's mosquitto. The figures go to BENCHMARKS.md by hand (a section of
their own, kept by benchmarks/run.py).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

from retained import connect, rss_kb, side_by_side

from culex.protocol import Decoder, Subscribe, SubscriptionRequest

BATCH = 100  # filters per SUBSCRIBE


def _settled_rss(pid: int) -> int:
    """The broker's RSS once it has stopped growing (it answers before it is done freeing)."""
    last = rss_kb(pid)
    for _ in range(20):
        time.sleep(0.1)
        now = rss_kb(pid)
        if now == last:
            break
        last = now
    return last


def subscriptions(port: int, pid: int, count: int) -> float:
    """Bytes per subscription: one client subscribes to ``count`` filters, each its own
    three-level topic (``maison/pieceN/capteurM``, the shape of the retained benchmark)."""
    client = connect(port, "router")
    before = _settled_rss(pid)
    packets = [Subscribe(n // BATCH + 1,
                         [SubscriptionRequest(f"maison/piece{i % 100}/capteur{i}", 1)
                          for i in range(n, min(n + BATCH, count))]).encode(4)
               for n in range(0, count, BATCH)]
    client.sendall(b"".join(packets))
    decoder, acked = Decoder(version=4), 0
    while acked < len(packets):
        decoder.feed(client.recv(1 << 16))
        while decoder.next_packet() is not None:
            acked += 1
    grown = _settled_rss(pid) - before
    client.close()
    return grown * 1024 / count


def connections(port: int, pid: int, count: int) -> float:
    """Bytes per connection with one subscription of its own (``devices/N/commands``)."""
    before = _settled_rss(pid)
    socks = []
    for i in range(count):
        sock = connect(port, f"device{i}")
        sock.sendall(Subscribe(1, [SubscriptionRequest(f"devices/{i}/commands", 1)]).encode(4))
        socks.append(sock)
    for sock in socks:
        got = b""
        while len(got) < 5:  # SUBACK
            got += sock.recv(5 - len(got))
    grown = _settled_rss(pid) - before
    for sock in socks:
        sock.close()
    return grown * 1024 / count


def run(cmd: list[str], port: int, args: argparse.Namespace) -> str:
    results = []
    for measure, count in ((subscriptions, args.subscriptions),
                           (connections, args.connections)):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            connect(port, "ready").close()
            results.append(measure(port, proc.pid, count))
        finally:
            proc.terminate()
            proc.wait(10)
    return (f"{results[0]:6.0f} bytes per subscription   "
            f"{results[1] / 1024:5.2f} KB per connection with one subscription")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=50_000)
    parser.add_argument("--connections", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="routing-") as tmp:
        print(f"{args.subscriptions:,} subscriptions of one client; {args.connections:,} "
              "connections with one subscription each:")
        for name, cmd, port in side_by_side(tmp, "max_queued_messages 0\n"):
            print(f"{name:11}", run(cmd, port, args))
    return 0

if __name__ == "__main__":
    sys.exit(main())
