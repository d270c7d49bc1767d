"""``culex bench``: load an MQTT broker and measure it, in the spirit of emqtt-bench.

``conn`` opens connections, ``sub`` holds subscribers, ``pub`` publishes, ``pubsub`` does both
and measures each message's end-to-end latency (its sending time heads the payload). The
clients are spread over ``--workers`` processes, each an asyncio loop running culex's own
client. Once a second a status line (on a terminal, rewritten in place); at the end a summary,
or ``--json``. The tool counts its own CPU time and says when it, rather than the broker, is
what limits the rate.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import queue
import signal
import sys
import time
from collections import Counter
from typing import Any, TextIO

from ..client import ClientOptions, TLSOptions
from ..protocol import MQTT_3_1, MQTT_3_1_1, MQTT_5, Properties
from ._bench_worker import Plan, bucket_value, run

PROG = "culex bench"
BUSY = 0.9  # a worker using this share of a core or more is the likely bottleneck
MODES = ("conn", "sub", "pub", "pubsub")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, add_help=False, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--help", action="help", help="show this help and exit")
    p.add_argument("mode", choices=MODES, help="conn: connections; sub: subscribers; pub: "
                                                "publishers; pubsub: both, with latency")
    a = p.add_argument
    a("-h", "--host", default="localhost", help="broker host (default localhost)")
    a("-p", "--port", type=int, help="port (default 1883, 8883 with TLS)")
    a("-V", "--version", type=int, default=4, choices=(3, 4, 5),
      help="MQTT version: 3 (3.1), 4 (3.1.1, the default) or 5")
    a("-c", "--count", type=int, default=200, help="clients (default 200)")
    a("-n", "--startnumber", type=int, default=0, help="number of the first client")
    a("-i", "--interval", type=float, default=10.0,
      help="milliseconds between connections (default 10)")
    a("-I", "--interval_of_msg", type=float, default=1000.0,
      help="milliseconds between messages of one publisher (default 1000; 0: flat out)")
    a("-t", "--topic", default="bench/%i",
      help="topic; %%i is the client's number, %%c its id (default bench/%%i)")
    a("--sub-topic", help="pubsub: what subscribers subscribe to (default: the topic with "
                          "%%i and %%c as +)")
    a("--subscribers", type=int, default=1, help="pubsub: how many of the clients "
                                                 "subscribe (default 1)")
    a("-s", "--size", type=int, default=256, help="payload bytes (default 256; 8 at least "
                                                 "for latency)")
    a("-q", "--qos", type=int, default=0, choices=(0, 1, 2), help="QoS (default 0)")
    a("-r", "--retain", action="store_true", help="publish retained messages")
    a("-L", "--limit", type=int, default=0, help="messages to publish in all (0: no limit)")
    a("-F", "--inflight", type=int, default=1,
      help="QoS 1/2 messages unacknowledged at once per publisher (default 1)")
    a("-u", "--username", help="user name")
    a("-P", "--password", help="password")
    a("-k", "--keepalive", type=int, default=300, help="keep-alive seconds (default 300)")
    a("-C", "--clean", type=lambda text: text.lower() != "false", default=True,
      help="clean session/start (default true)")
    a("-x", "--session-expiry", type=int, default=0, help="MQTT 5 session expiry (s)")
    a("--prefix", default="", help="client id prefix (default: bench-PID-)")
    a("-S", "--ssl", action="store_true", help="TLS")
    a("--cacertfile", help="CA certificates (TLS)")
    a("--certfile", help="client certificate (TLS)")
    a("--keyfile", help="client key (TLS)")
    a("--insecure", action="store_true", help="do not check the server's certificate name")
    a("--ws", action="store_true", help="MQTT over WebSockets (path /mqtt)")
    a("--workers", type=int, default=1, help="processes to spread the clients over")
    a("--duration", type=float, default=0.0, help="seconds to run (0: until -L is reached, "
                                                  "or Ctrl-C)")
    a("--json", action="store_true", help="print the summary as JSON")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.count < 1 or args.workers < 1:
        print("Error: -c and --workers must be at least 1.", file=sys.stderr)
        return 1
    if args.mode == "pubsub" and not 0 < args.subscribers < args.count:
        print("Error: pubsub needs --subscribers between 1 and -c minus 1.", file=sys.stderr)
        return 1
    if args.mode in ("conn", "sub") and not args.duration:
        print(f"Error: {args.mode} runs for --duration seconds.", file=sys.stderr)
        return 1
    if args.mode in ("pub", "pubsub") and not (args.duration or args.limit):
        print("Error: give --duration or -L: a run must end by itself.", file=sys.stderr)
        return 1
    tls = TLSOptions(args.cacertfile, None, args.certfile, args.keyfile, args.insecure) \
        if args.ssl or args.cacertfile else None
    version = {3: MQTT_3_1, 4: MQTT_3_1_1, 5: MQTT_5}[args.version]
    properties = Properties(session_expiry_interval=args.session_expiry) \
        if version == MQTT_5 and args.session_expiry else Properties()
    options = ClientOptions(
        host=args.host, port=args.port or (8883 if tls else 1883), tls=tls,
        websocket_path="/mqtt" if args.ws else None, version=version,
        clean_start=args.clean, keep_alive=args.keepalive, username=args.username,
        password=args.password.encode() if args.password is not None else None,
        properties=properties)
    sub_topic = args.sub_topic or args.topic.replace("%i", "+").replace("%c", "+")
    workers = min(args.workers, args.count)
    plans = [Plan(args.mode, options, worker, workers, args.count, args.subscribers,
                  args.startnumber, args.prefix or f"bench-{os.getpid()}-",
                  args.interval / 1000, args.interval_of_msg / 1000, args.topic, sub_topic,
                  args.size, args.qos, args.retain, args.limit, args.inflight, args.duration)
             for worker in range(workers)]
    return _run(plans, args)


def _run(plans: list[Plan], args: argparse.Namespace) -> int:
    context = multiprocessing.get_context("spawn")
    reports: Any = context.Queue()
    go, halt = context.Event(), context.Event()
    if args.mode != "pubsub":
        go.set()
    processes = [context.Process(target=_worker, args=(plan, reports, go, halt), daemon=True)
                 for plan in plans]
    for process in processes:
        process.start()
    board = _Board(args, len(plans), sys.stderr)
    try:
        while not board.finished():
            try:
                worker, report = reports.get(timeout=0.25)
            except queue.Empty:
                if not any(process.is_alive() for process in processes):
                    break  # a worker that died without its last report
            else:
                board.add(worker, report)
            if args.mode == "pubsub" and not go.is_set() and (
                    board.subscribed >= args.subscribers or board.elapsed() > 30):
                go.set()
            board.tick()
    except KeyboardInterrupt:
        halt.set()
        while any(process.is_alive() for process in processes):
            try:
                worker, report = reports.get(timeout=0.25)
            except queue.Empty:
                continue
            board.add(worker, report)
    for process in processes:
        process.join(timeout=15)
        if process.is_alive():
            process.terminate()
    board.tick(final=True)
    summary = board.summary()
    if args.json:
        print(json.dumps(summary))
    else:
        print(_summary_text(summary))
    return 1 if summary["connected"] == 0 else 0


def _worker(plan: Plan, reports: Any, go: Any, halt: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    run(plan, reports, go, halt)


class _Board:
    """Totals, and the status line once a second."""

    def __init__(self, args: argparse.Namespace, workers: int, out: TextIO) -> None:
        self.args = args
        self.out = out
        self.tty = out.isatty()
        self.start = self.last = time.monotonic()
        self.connected = [0] * workers
        self.subscribed_by = [0] * workers
        self.done = [False] * workers
        self.totals: Counter[str] = Counter()
        self.latency: Counter[int] = Counter()  # the whole run
        self.window: Counter[int] = Counter()  # since the last status line
        self.cpu = [0.0] * workers  # seconds, the whole run
        self.cpu_window = [0.0] * workers
        self.busy_seconds = 0
        self.warned = False
        self.first = self.final = 0  # monotonic ns: the first and last message, any worker
        self.shown: Counter[str] = Counter()

    @property
    def subscribed(self) -> int:
        return sum(self.subscribed_by)

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def finished(self) -> bool:
        return all(self.done)

    def add(self, worker: int, report: dict[str, Any]) -> None:
        self.connected[worker] = report["connected"]
        self.subscribed_by[worker] = report["subscribed"]
        self.done[worker] = report["done"]
        for key in ("failed", "published", "received", "refused"):
            self.totals[key] += report[key]
        latency = Counter({int(k): v for k, v in report["latency"].items()})
        self.latency.update(latency)
        self.window.update(latency)
        self.cpu[worker] += report["cpu"]
        self.cpu_window[worker] += report["cpu"]
        if report["first"]:
            self.first = min(self.first or report["first"], report["first"])
            self.final = max(self.final, report["last"])

    def tick(self, final: bool = False) -> None:
        now = time.monotonic()
        if now - self.last < 1.0 and not final:
            return
        span = max(now - self.last, 1e-9)
        self.last = now
        busiest = max(self.cpu_window) / span
        self.busy_seconds = self.busy_seconds + 1 if busiest >= BUSY else 0
        line = self._line(span, busiest)
        self.shown = Counter(self.totals)
        self.window = Counter()
        self.cpu_window = [0.0] * len(self.cpu_window)
        if self.tty:
            self.out.write("\r\x1b[K" + line + ("\n" if final else ""))
        elif not final:
            self.out.write(line + "\n")
        self.out.flush()
        if self.busy_seconds >= 2 and not self.warned:
            self.warned = True
            self.out.write(("\n" if self.tty else "") + _bottleneck(busiest, self.args.workers))
            self.out.flush()

    def _line(self, span: float, busiest: float) -> str:
        rate = {key: (self.totals[key] - self.shown[key]) / span
                for key in ("published", "received")}
        parts = [f"{self.elapsed():6.1f}s", f"conn {sum(self.connected)}/{self.args.count}"]
        if self.totals["failed"]:
            parts.append(f"failed {self.totals['failed']}")
        if self.args.mode in ("pub", "pubsub"):
            parts.append(f"pub {self.totals['published']:,} ({rate['published']:,.0f}/s)")
        if self.args.mode in ("sub", "pubsub"):
            parts.append(f"recv {self.totals['received']:,} ({rate['received']:,.0f}/s)")
        if self.window:
            parts.append(f"{'connect' if self.args.mode == 'conn' else 'latency'} "
                         f"p50 {_ms(_percentile(self.window, 50))} "
                         f"p99 {_ms(_percentile(self.window, 99))}")
        parts.append(f"cpu {busiest:.0%}")
        return "  ".join(parts)

    def summary(self) -> dict[str, Any]:
        seconds = self.elapsed()
        # Rates over the time messages flowed: not the connecting, nor the wait at the end.
        active = (self.final - self.first) / 1e9 if self.final > self.first else seconds
        messages = self.totals["published"] + self.totals["received"]
        cpu = sum(self.cpu)
        return {
            "mode": self.args.mode, "seconds": round(seconds, 3),
            "clients": self.args.count, "connected": sum(self.connected),
            "connect_failures": self.totals["failed"],
            "published": self.totals["published"], "received": self.totals["received"],
            "refused": self.totals["refused"],
            "active_seconds": round(active, 3),
            "publish_rate": round(self.totals["published"] / active, 1),
            "receive_rate": round(self.totals["received"] / active, 1),
            "latency_ms": {f"p{p}": round(_percentile(self.latency, p) / 1000, 3)
                           for p in (50, 90, 99)} if self.latency else None,
            "latency_of": "connect" if self.args.mode == "conn" else "end_to_end",
            "tool_cpu_seconds": round(cpu, 3),
            "tool_cpu_us_per_message": round(cpu / messages * 1e6, 2) if messages else None,
            "tool_was_bottleneck": self.warned,
        }


def _percentile(histogram: Counter[int], percent: float) -> float:
    """Microseconds below which ``percent`` of the samples lie (to the bucket's 5%)."""
    total = sum(histogram.values())
    wanted = math.ceil(total * percent / 100)
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= wanted:
            return bucket_value(bucket)
    return 0.0


def _ms(microseconds: float) -> str:
    return f"{microseconds / 1000:.2f}ms"


def _bottleneck(busiest: float, workers: int) -> str:
    return (f"warning: a culex bench worker is using {busiest:.0%} of a CPU core: the tool, "
            f"not the broker, may be what limits these figures (try --workers "
            f"{workers * 2})\n")


def _summary_text(summary: dict[str, Any]) -> str:
    lines = [f"{summary['mode']}: {summary['seconds']:.1f} s ({summary['active_seconds']:.1f} s "
             f"of messages), {summary['connected']} of {summary['clients']} clients "
             f"connected, {summary['connect_failures']} failed"]
    if summary["published"] or summary["mode"] in ("pub", "pubsub"):
        lines.append(f"published {summary['published']:,} ({summary['publish_rate']:,.0f}/s)"
                     + (f", refused {summary['refused']:,}" if summary["refused"] else ""))
    if summary["received"] or summary["mode"] in ("sub", "pubsub"):
        lines.append(f"received {summary['received']:,} ({summary['receive_rate']:,.0f}/s)")
    if summary["latency_ms"]:
        what = "connect time" if summary["latency_of"] == "connect" else "latency"
        lines.append(f"{what}: " + ", ".join(f"{k} {v:.2f} ms"
                                             for k, v in summary["latency_ms"].items()))
    per = summary["tool_cpu_us_per_message"]
    lines.append(f"culex bench itself: {summary['tool_cpu_seconds']:.1f} CPU-s"
                 + (f", {per:.1f} us per message" if per else "")
                 + ("; it was the bottleneck" if summary["tool_was_bottleneck"] else ""))
    return "\n".join(lines)
