#!/usr/bin/env python3
"""Floods and slow readers, culex and Mosquitto side by side (the scenarios of tests/abuse/).

    python3 benchmarks/abuse.py [--seconds 10] [--record]

1. flood: one raw client publishes QoS 1 messages (64-byte payloads) in a tight loop and reads
   its PUBACKs only when its socket is readable; no subscriber.
2. slow readers: the same flood, with two subscribers that never read and one that reads as
   fast as it can.
3. failing logins: 50 clients log in with a wrong password again and again, while a legitimate
   client (logged in before) measures its QoS 1 round trip; the password file is made by
   mosquitto_passwd and read by both brokers.

Printed per broker: messages published, PUBACKs read during the flood, the broker's resident
memory growth at the end of it, and (2) what the reading subscriber received. Both brokers run
on loopback ports of this machine, for a bounded time. --record writes the table into the
last section of BENCHMARKS.md (benchmarks/run.py keeps that section).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "abuse"), str(ROOT / "src")]

from culex.protocol import (  # noqa: E402
    Connect,
    Decoder,
    PubAck,
    Publish,
    Subscribe,
    SubscriptionRequest,
)

from flood import Reader, connected, flood_qos1, qos0_publish_size  # noqa: E402

HEADING = "## Floods and slow readers"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the broker exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("the broker did not listen in time")


@contextmanager
def broker(name: str, password_file: Path | None = None) -> Iterator[tuple[int, int]]:
    """(port, pid) of a fresh broker on loopback."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="abuse-") as tmp:
        conf = Path(tmp) / "broker.conf"
        if name == "mosquitto":
            auth = (f"password_file {password_file}\nallow_anonymous false\n"
                    if password_file else "allow_anonymous true\n")
            # user root: started as root, Mosquitto would read the file as user mosquitto.
            conf.write_text(f"listener {port} 127.0.0.1\n{auth}persistence false\n"
                            + ("user root\n" if os.geteuid() == 0 else ""))
            cmd = [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)]
        else:
            cmd = [sys.executable, "-m", "culex", "serve", "--no-persistence",
                   "--listen", f"127.0.0.1:{port}"]
            if password_file:
                conf.write_text(f'password_file = "{password_file}"\n'
                                "allow_anonymous = false\n")
                cmd += ["--config", str(conf)]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), XDG_STATE_HOME=tmp)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env)
        try:
            wait_listening(port, proc)
            yield port, proc.pid
        finally:
            proc.terminate()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--record", action="store_true", help="write it into BENCHMARKS.md")
    args = parser.parse_args()
    lines = run(args.seconds)
    print("\n".join(lines))
    if args.record:
        record(lines, args.seconds)


def record(lines: list[str], seconds: float) -> None:
    document = ROOT / "BENCHMARKS.md"
    text = document.read_text()
    if HEADING in text:
        text = text[:text.index(HEADING)].rstrip() + "\n"
    mosquitto = subprocess.run([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-h"],
                               capture_output=True, text=True).stdout.splitlines()[:1]
    document.write_text(text + f"""
{HEADING}

Written by `python3 benchmarks/abuse.py --record` ({seconds:g} s per flood; {" ".join(mosquitto)},
culex from this tree). The flooding client is one Python process: both brokers take what it
sends; the figures to compare are the PUBACKs read during the flood (the broker keeps pace),
the memory growth, and what the reading subscriber received beside two stalled ones. Logins:
50 clients failing logins from 127.0.0.1 beside a legitimate client's QoS 1 round trips.

```
""" + "\n".join(lines) + "\n```\n")
    print(f"written to {document.relative_to(ROOT)}")


def login(port: int, client_id: str, password: bytes) -> socket.socket | None:
    """A connection logged in as "user", or None if the broker refused it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as MQTT client libraries do
    sock.sendall(Connect(client_id, 4, username="user", password=password).encode(4))
    ack = sock.recv(4)
    if ack == b"\x20\x02\x00\x00":
        return sock
    sock.close()
    return None


def round_trips(sock: socket.socket, seconds: float) -> list[float]:
    """QoS 1 round trips (publish to its own subscription, until the delivery is back)."""
    sock.sendall(Subscribe(1, [SubscriptionRequest("lat/t", 1)]).encode(4))
    sock.recv(5)
    decoder = Decoder(version=4)
    samples = []
    deadline = time.monotonic() + seconds
    pid = 0
    while time.monotonic() < deadline:
        pid = pid % 60000 + 1
        start = time.perf_counter()
        sock.sendall(Publish("lat/t", b"x" * 64, qos=1, packet_id=pid).encode(4))
        delivered = False
        while not delivered:
            packet = decoder.next_packet()
            if packet is None:
                decoder.feed(sock.recv(65536))
            elif isinstance(packet, Publish):
                sock.sendall(PubAck(packet.packet_id).encode(4))
                delivered = True
        samples.append(time.perf_counter() - start)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


def failing_logins(name: str, seconds: float, password_file: Path) -> str:
    with broker(name, password_file) as (port, _):
        legit = login(port, "legit", b"right")
        assert legit is not None, "the legitimate client was refused"
        idle = round_trips(legit, seconds / 2)
        stop = threading.Event()
        refusals = [0]

        def attack(n: int) -> None:
            while not stop.is_set():
                try:
                    if login(port, f"attacker{n}", b"wrong") is None:
                        refusals[0] += 1
                except OSError:
                    pass

        attackers = [threading.Thread(target=attack, args=(n,)) for n in range(50)]
        for thread in attackers:
            thread.start()
        loaded = round_trips(legit, seconds)
        stop.set()
        for thread in attackers:
            thread.join()
        legit.close()
    return (f"{'logins':<14} {name:<10} refusals {refusals[0] / seconds:>8,.0f}/s; QoS 1 round "
            f"trip p50/p99 idle {percentile(idle, .5):.2f}/{percentile(idle, .99):.2f} ms, "
            f"under attack {percentile(loaded, .5):.2f}/{percentile(loaded, .99):.2f} ms")


def run(seconds: float) -> list[str]:
    size = qos0_publish_size("flood/t")
    lines = [f"{'scenario':<14} {'broker':<10} {'published':>10} {'acked during':>13} "
             f"{'RSS growth':>11} {'reader got':>11}"]
    for name in ("mosquitto", "culex"):
        with broker(name) as (port, pid):
            result = flood_qos1(port, pid, seconds)
        lines.append(f"{'flood':<14} {name:<10} {result.sent:>10,} "
                     f"{result.acked_during:>13,} {result.rss_growth_kb / 1024:>9.1f}MB "
                     f"{'-':>11}")
    for name in ("mosquitto", "culex"):
        with broker(name) as (port, pid):
            stalled = [connected(port, f"stalled{n}", ("flood/#", 0)) for n in range(2)]
            reader = Reader(connected(port, "reader", ("flood/#", 0)))
            result = flood_qos1(port, pid, seconds)
            reader.wait_for(result.acked * size, 30)
            got = reader.received // size
            reader.stop()
            for sock in stalled:
                sock.close()
        lines.append(f"{'slow readers':<14} {name:<10} {result.sent:>10,} "
                     f"{result.acked_during:>13,} {result.rss_growth_kb / 1024:>9.1f}MB "
                     f"{got:>11,}")
    with tempfile.TemporaryDirectory(prefix="abuse-") as tmp:
        password_file = Path(tmp) / "passwords"
        subprocess.run(["mosquitto_passwd", "-b", "-c", str(password_file), "user", "right"],
                       check=True, capture_output=True)
        for name in ("mosquitto", "culex"):
            lines.append(failing_logins(name, seconds, password_file))
    return lines


if __name__ == "__main__":
    main()
