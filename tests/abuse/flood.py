"""Abusive clients for the flood tests and benchmarks/abuse.py: bounded in time, loopback only."""

from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass

from culex.protocol import Connect, Publish, Subscribe, SubscriptionRequest

PAYLOAD = b"x" * 64


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def connected(port: int, client_id: str, *subscriptions: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(Connect(client_id, 4).encode(4))
    assert sock.recv(4) == b"\x20\x02\x00\x00"
    if subscriptions:
        sock.sendall(Subscribe(1, [SubscriptionRequest(f, q) for f, q in subscriptions])
                     .encode(4))
        suback = sock.recv(4 + len(subscriptions))
        assert suback[:1] == b"\x90", suback
    return sock


@dataclass
class FloodResult:
    sent: int  # PUBLISH packets written
    acked_during: int  # PUBACKs read while flooding
    acked: int  # PUBACKs read in all, once the broker has caught up
    rss_growth_kb: int  # the broker's resident memory at the end of the flood, less before


def flood_qos1(port: int, pid: int, seconds: float, topic: str = "flood/t") -> FloodResult:
    """QoS 1 PUBLISHes in a tight loop; PUBACKs read only when the socket is readable."""
    sock = connected(port, "flooder")
    rss_before = rss_kb(pid)
    sock.setblocking(False)
    batch = b"".join(Publish(topic, PAYLOAD, qos=1, packet_id=n).encode(4)
                     for n in range(1, 1001))
    per_batch = 1000
    pending = memoryview(batch)
    sent_bytes = 0
    acked_bytes = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        readable, writable, _ = select.select([sock], [sock], [], 0.05)
        if readable:
            data = sock.recv(1 << 20)
            if not data:
                raise ConnectionError("the broker closed the flooding connection")
            acked_bytes += len(data)
        if writable:
            try:
                count = sock.send(pending)
            except BlockingIOError:
                continue
            sent_bytes += count
            pending = pending[count:]
            if not pending:
                pending = memoryview(batch)
    rss_growth = rss_kb(pid) - rss_before
    packet_size = len(batch) // per_batch
    sent = sent_bytes // packet_size
    acked_during = acked_bytes // 4
    # What the broker still owes comes now; it must all come.
    sock.setblocking(True)
    sock.settimeout(30)
    while acked_bytes // 4 < sent:
        data = sock.recv(1 << 20)
        if not data:
            break
        acked_bytes += len(data)
    sock.close()
    return FloodResult(sent, acked_during, acked_bytes // 4, rss_growth)


class Reader:
    """A subscriber that reads as fast as it can, counting bytes (its packets are all alike)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.received = 0
        self._stop = False
        self._progress = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            if not data:
                return
            with self._progress:
                self.received += len(data)
                self._progress.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Whether ``count`` bytes have come within ``timeout`` seconds."""
        with self._progress:
            return self._progress.wait_for(lambda: self.received >= count, timeout)

    def stop(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


def qos0_publish_size(topic: str) -> int:
    return len(Publish(topic, PAYLOAD).encode(4))
