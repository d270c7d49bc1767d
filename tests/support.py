"""Test helpers: a fake clock, an in-memory client for the sans-IO broker, a real broker
process, and a raw-socket client for protocol-violation tests."""

from __future__ import annotations

import heapq
import itertools
import os
import queue
import re
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from culex.broker import Broker, Connection
from culex.config import Config
from culex.protocol import NO_PROPERTIES, Decoder, Packet

WAIT = 10.0  # seconds any single awaited event may take before a test fails


# -- sans-IO harness -------------------------------------------------------------------------


def bare(packets: list[Packet]) -> list[Packet]:
    """The packets with their properties left out, to compare all they say but those (the
    compiled packet classes take a Properties where one goes, never mock.ANY)."""
    return [replace(packet, properties=NO_PROPERTIES)  # type: ignore[type-var]
            if hasattr(packet, "properties") else packet for packet in packets]


class _Handle:
    def __init__(self, when: float, seq: int, callback: Callable[..., Any], args: tuple[Any, ...]):
        self.when, self.seq, self.callback, self.args = when, seq, callback, args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: _Handle) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


class _DoneTask:
    def __init__(self, value: Any, error: Exception | None = None) -> None:
        self.value = value
        self.error = error

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        callback(self)


class FakeScheduler:
    """A clock that moves only when told to, running due callbacks in order."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._heap: list[_Handle] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> _Handle:
        handle = _Handle(self.now + delay, next(self._seq), callback, args)
        heapq.heappush(self._heap, handle)
        return handle

    def create_task(self, coro: Any) -> Any:
        """Run a coroutine that needs no real event loop, to its end, at once."""
        try:
            coro.send(None)
        except StopIteration as stop:
            return _DoneTask(stop.value)
        except Exception as exc:  # kept for result(), as a real task does
            return _DoneTask(None, exc)
        raise AssertionError("a coroutine waited on something in a sans-IO test")

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self._heap and self._heap[0].when <= end:
            handle = heapq.heappop(self._heap)
            self.now = max(self.now, handle.when)
            if not handle.cancelled:
                handle.callback(*handle.args)
        self.now = end


class MemorySink:
    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False
        self.reading = True  # whether the connection lets its peer's bytes in

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.data += data

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class MemoryClient:
    """A client wired to a Connection in memory: packets in, decoded packets out."""

    _peers = itertools.count(1)

    def __init__(self, broker: Broker, version: int = 4, peer: str | None = None,
                 sink: MemorySink | None = None) -> None:
        self.version = version
        self.sink = sink or MemorySink()
        # Each client from an address of its own, unless told: failed logins slow an address.
        self.peer = peer or f"memory-{next(self._peers)}"
        self.conn = Connection(broker, self.sink, self.peer)
        self._decoder = Decoder(version=version)
        self._read = 0
        self.backlog: list[Packet] = []  # received but put back by a helper

    def send(self, *packets: Packet) -> None:
        self.conn.data_received(b"".join(p.encode(self.version) for p in packets))

    def send_raw(self, data: bytes) -> None:
        self.conn.data_received(data)

    def received(self) -> list[Packet]:
        """Packets written to this client since the last call."""
        new = bytes(self.sink.data[self._read:])
        self._read = len(self.sink.data)
        self._decoder.feed(new)
        out, self.backlog = self.backlog, []
        while (packet := self._decoder.next_packet()) is not None:
            out.append(packet)
        return out

    def drop(self) -> None:
        """The network connection breaks."""
        self.sink.closed = True
        self.conn.connection_lost()


def make_broker(**options: Any) -> tuple[Broker, FakeScheduler]:
    scheduler = FakeScheduler()
    config = Config(**options)
    config.validate()
    return Broker(config, scheduler), scheduler


# -- a real broker process -------------------------------------------------------------------


class BrokerProcess:
    """``culex serve`` in a subprocess on a free loopback port, with its log captured."""

    def __init__(self, *args: str, listen: bool = True) -> None:
        self.args = args
        self.listen = listen  # on a free port; off when the configuration has listeners
        self.lines: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        # The default data directory, private to this process (a test that restarts a broker
        # on the same data passes --data-dir).
        self.state_home = tempfile.mkdtemp(prefix="culex-test-")

    def start(self) -> BrokerProcess:
        listen = ["--listen", "127.0.0.1:0"] if self.listen else []
        cmd = [sys.executable, "-m", "culex", "serve", *listen, *self.args]
        env = broker_env(self.state_home)
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True, env=env)
        self._pumping = threading.Thread(target=self._pump, daemon=True)
        self._pumping.start()
        line = self.wait_for_log(r"listening on 127\.0\.0\.1:(\d+)")
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match
        self.port = int(match.group(1))
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            self._lines.put(line)

    def wait_for_log(self, pattern: str, timeout: float = WAIT) -> str:
        """The first log line from now on (or already seen) that matches ``pattern``."""
        regex = re.compile(pattern)
        for line in list(self.lines):
            if regex.search(line):
                return line
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no log line matching {pattern!r}; log:\n"
                                     + "".join(self.lines))
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if regex.search(line):
                return line

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # no leftover to disturb the next test
            self.proc.wait()
            raise AssertionError("the broker did not stop within "
                                 f"{WAIT:.0f} s of SIGTERM; log:\n" + "".join(self.lines)
                                 ) from None
        finally:
            shutil.rmtree(self.state_home, ignore_errors=True)

    def assert_no_traceback(self) -> None:
        """Whatever the test checked, an exception the broker did not handle (an error in an
        event loop callback, a task that died) fails it: call after stop()."""
        self._pumping.join(timeout=WAIT)  # the rest of the log, up to the pipe's end
        if any("Traceback (most recent call last)" in line for line in self.lines):
            raise AssertionError("the broker logged an unhandled exception:\n"
                                 + "".join(self.lines))

    def kill(self) -> int:
        """SIGKILL: no shutdown code runs, as in a crash."""
        assert self.proc is not None
        self.proc.kill()
        return self.proc.wait(timeout=WAIT)


def broker_env(state_home: str) -> dict[str, str]:
    """The environment of a broker under test: its default data directory in ``state_home``."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", XDG_STATE_HOME=state_home)
    env.pop("STATE_DIRECTORY", None)
    return env


@dataclass
class Endpoint:
    """A broker under test, by kind ("culex" or "mosquitto") and port."""

    kind: str
    port: int


class MosquittoProcess:
    """A real Mosquitto broker on a loopback port, with extra configuration lines; it can be
    killed and started again on the same port."""

    def __init__(self, directory: Path, extra: str = "", port: int = 0) -> None:
        self.directory = directory
        self.extra = extra
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MosquittoProcess:
        conf = self.directory / f"mosquitto-{self.port}.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true",
                 f"log_dest file {self.directory / f'mosquitto-{self.port}.log'}",
                 "log_type error"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            lines.append("user root")  # as root it would switch to a user that may not exist
        conf.write_text("\n".join(lines) + "\n" + self.extra)
        self.proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto",
                                      "-c", str(conf)])
        deadline = time.monotonic() + WAIT
        while True:  # listening once a connection is accepted
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=WAIT):
                    return self
            except ConnectionRefusedError:
                assert self.proc.poll() is None, "mosquitto exited"
                assert time.monotonic() < deadline, "mosquitto did not listen"
                time.sleep(0.02)

    def stop(self, kill: bool = False) -> None:
        assert self.proc is not None
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        self.proc.wait(WAIT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_culex(*args: str) -> subprocess.CompletedProcess[str]:
    """``culex ARGS`` to its end, with a private data directory."""
    with tempfile.TemporaryDirectory() as state_home:
        return subprocess.run([sys.executable, "-m", "culex", *args], capture_output=True,
                              text=True, timeout=30, env=broker_env(state_home))


@contextmanager
def broker_with_config(directory: Path, text: str, *args: str) -> Iterator[BrokerProcess]:
    """A broker started with ``text`` as its TOML configuration file."""
    path = directory / "culex.toml"
    path.write_text(text)
    with running_broker("--config", str(path), *args,
                        listen="[[listener]]" not in text) as process:
        yield process


@contextmanager
def running_broker(*args: str, listen: bool = True) -> Iterator[BrokerProcess]:
    process = BrokerProcess(*args, listen=listen).start()
    try:
        yield process
    finally:
        process.stop()
    process.assert_no_traceback()


# -- raw sockets -----------------------------------------------------------------------------


class RawClient:
    """A TCP client that speaks bytes, for tests that break the protocol on purpose."""

    def __init__(self, port: int, version: int = 4, tls: ssl.SSLContext | None = None) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.sock = tls.wrap_socket(sock, server_hostname="localhost") if tls else sock
        self.version = version
        self.decoder = Decoder(version=version)

    def send(self, *packets: Packet) -> None:
        self.sock.sendall(b"".join(p.encode(self.version) for p in packets))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_packet(self, timeout: float = WAIT) -> Packet:
        deadline = time.monotonic() + timeout
        while True:
            packet = self.decoder.next_packet()
            if packet is not None:
                return packet
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no packet received in time")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed by the broker")
            self.decoder.feed(data)

    def expect_closed(self, timeout: float = WAIT) -> list[Packet]:
        """Read until the broker closes the connection; the packets it sent before that."""
        packets = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("the broker did not close the connection")
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            if not pending:
                ready, _, _ = select.select([self.sock], [], [], remaining)
                if not ready:
                    continue
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                data = b""
            if not data:
                while (packet := self.decoder.next_packet()) is not None:
                    packets.append(packet)
                return packets
            self.decoder.feed(data)

    def close(self) -> None:
        self.sock.close()


def mosquitto_sub(port: int, *args: str) -> subprocess.Popen[str]:
    """mosquitto_sub -d in the background (``args``: its options), once its subscription is
    in place (it printed the SUBACK)."""
    proc = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-d", "-p", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "received SUBACK" in line:
            return proc
    raise AssertionError("mosquitto_sub got no SUBACK: " + repr(proc.communicate()))


def sub_lines(proc: subprocess.Popen[str]) -> list[str]:
    """What a mosquitto_sub of ``mosquitto_sub()`` printed once it ended, less -d's lines."""
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err
    return [line for line in out.splitlines()
            if not line.startswith(("Client ", "Subscribed (mid"))]
