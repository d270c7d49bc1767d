"""``culex sub``: mosquitto_sub's options and behaviour, on culex's client."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from ..client import Client
from ..protocol import (
    MQTT_5,
    NO_PROPERTIES,
    Publish,
    SubscriptionRequest,
    is_valid_topic_filter,
    topic_matches,
)
from ._args import Common, common, fail, parser
from ._connect import connect, err
from ._format import Formatter

PROG = "culex sub"
TIMED_OUT = 27  # mosquitto_sub's exit status when -W runs out


def build_parser() -> argparse.ArgumentParser:
    p = parser(PROG, "Subscribe and print the messages received (mosquitto_sub's options).")
    what = p.add_argument_group("what to receive and how to print it")
    what.add_argument("-t", "--topic", action="append", default=[],
                      help="topic filter to subscribe to (repeatable)")
    what.add_argument("-T", "--filter-out", action="append", default=[],
                      help="do not print messages on topics matching this filter")
    what.add_argument("-U", "--unsubscribe", action="append", default=[],
                      help="unsubscribe from this filter first (persistent sessions)")
    what.add_argument("-v", "--verbose", action="store_true", help="print 'topic payload'")
    what.add_argument("-N", action="store_true", dest="no_newline",
                      help="no newline after each message")
    what.add_argument("-F", dest="format", help="output format (see below)")
    what.add_argument("-C", "--count", type=int, help="exit after this many messages")
    what.add_argument("-W", "--timeout", type=int,
                      help="exit after this many seconds (status 27 if it runs out)")
    what.add_argument("-R", "--no-retained", action="store_true", dest="no_stale",
                      help="do not print retained (stale) messages")
    what.add_argument("-E", "--exit-after-subscribe", action="store_true",
                      help="exit once the subscriptions are acknowledged")
    what.add_argument("--retained-only", action="store_true",
                      help="print retained messages only; exit at the first live one")
    what.add_argument("--remove-retained", action="store_true",
                      help="clear each retained message received")
    what.add_argument("--nl", action="store_true", dest="no_local",
                      help="MQTT 5 No Local: not the messages this client publishes")
    what.add_argument("--rap", action="store_true", dest="retain_as_published",
                      help="MQTT 5 Retain As Published")
    what.add_argument("--rh", type=int, default=0, choices=(0, 1, 2),
                      dest="retain_handling", help="MQTT 5 Retain Handling")
    p.epilog = ("-F: %t topic, %p payload, %x/%X hex payload, %l length, %q QoS, %r retain, "
                "%m packet id, %I ISO time, %U Unix time, %j/%J JSON, %A %C %D %E %F %P %R %S "
                "MQTT 5 properties, %% percent, @X strftime code, \\n \\t escapes.")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    shared = common(PROG, args)
    topics = args.topic or ([shared.topic_from_url] if shared.topic_from_url else [])
    if not topics:
        fail(PROG, "You must specify a topic to subscribe to.", shared.quiet)
    for topic in [*topics, *args.filter_out, *args.unsubscribe]:
        if not is_valid_topic_filter(topic):
            fail(PROG, f"Invalid subscription topic '{topic}', are all '+' and '#' "
                       "wildcards correct?", shared.quiet)
    if args.disable_clean_session and not shared.options.client_id:
        fail(PROG, "You must provide a client id if you are using the -c option.",
             shared.quiet)
    try:
        formatter = Formatter(args.format) if args.format else None
    except ValueError as exc:
        fail(PROG, f"Invalid -F format: {exc}.", shared.quiet)
    return asyncio.run(_subscribe(shared, topics, args, formatter))


async def _subscribe(shared: Common, topics: list[str], args: argparse.Namespace,
                     formatter: Formatter | None) -> int:
    out = sys.stdout.buffer
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    printed = 0
    client: Client | None = None
    cleaning: list[asyncio.Future[int]] = []  # --remove-retained: the empty messages sent

    def finish(status: int) -> None:
        if not done.done():
            done.set_result(status)

    def received(message: Publish) -> None:
        nonlocal printed
        if done.done():
            return
        if args.remove_retained and message.retain and message.payload:
            assert client is not None
            cleaning.append(asyncio.ensure_future(client.publish(message.topic, b"", 0, True)))
        if args.retained_only and not message.retain:
            finish(0)
            return
        if (args.no_stale and message.retain) or any(
                topic_matches(pattern, message.topic) for pattern in args.filter_out):
            return
        out.write(_render(message, args, formatter))
        out.flush()
        printed += 1
        if args.count is not None and printed >= args.count:
            finish(0)

    client = await connect(shared, on_message=received)
    version = shared.options.version
    if args.unsubscribe:
        await client.unsubscribe(args.unsubscribe, shared.properties["unsubscribe"]
                                 if version == MQTT_5 else NO_PROPERTIES)
    requests = [SubscriptionRequest(topic, args.qos, args.no_local, args.retain_as_published,
                                    args.retain_handling) for topic in topics]
    codes = await client.subscribe(requests, shared.properties["subscribe"]
                                   if version == MQTT_5 else NO_PROPERTIES)
    if shared.debug:
        print(f"Subscribed (mid: 1): {', '.join(map(str, codes))}", flush=True)
    if all(code >= 0x80 for code in codes):
        err(shared, "All subscription requests were denied.")
        await client.disconnect()
        return 0
    if args.exit_after_subscribe:
        await client.disconnect()
        return 0
    if args.timeout is not None:
        asyncio.get_running_loop().call_later(args.timeout, finish, TIMED_OUT)
    client.closed.add_done_callback(lambda _: finish(1))
    status = await done
    if status == TIMED_OUT:
        err(shared, "Timed out")
    if client.closed.done():
        if status == 1:
            err(shared, f"Error: {client.closed.result()}")
        return status
    if cleaning:
        await asyncio.wait(cleaning)
    await client.disconnect()
    return status


def _render(message: Publish, args: argparse.Namespace, formatter: Formatter | None) -> bytes:
    end = b"" if args.no_newline else b"\n"
    if formatter is not None:
        return formatter(message, time.time()) + end
    payload = bytes(message.payload)
    if args.verbose:
        return message.topic.encode() + b" " + (payload if payload else b"(null)") + end
    return payload + end
