"""``culex rr``: request and response as mosquitto_rr (MQTT 5.0 4.10): subscribe to the response
topic, publish the request with Response Topic and Correlation Data, print the first response
that carries the same correlation data (or none), and exit."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import replace

from ..protocol import Publish, SubscriptionRequest, is_valid_topic_filter
from ._args import Common, common, fail, parser
from ._connect import connect, err, reason_text
from ._format import Formatter
from ._sub import TIMED_OUT

PROG = "culex rr"


def build_parser() -> argparse.ArgumentParser:
    p = parser(PROG, "Send a request and print its response (mosquitto_rr's options; MQTT 5).")
    what = p.add_argument_group("the request")
    what.add_argument("-t", "--topic", help="topic to send the request to")
    what.add_argument("-e", "--response-topic", help="topic the response is expected on")
    source = what.add_mutually_exclusive_group()
    source.add_argument("-m", "--message", help="the request")
    source.add_argument("-f", "--file", help="send the contents of a file")
    source.add_argument("-s", "--stdin-file", action="store_true", help="send stdin")
    source.add_argument("-n", "--null-message", action="store_true", help="send nothing")
    what.add_argument("-W", "--timeout", type=int, help="seconds to wait (status 27 then)")
    what.add_argument("-v", "--verbose", action="store_true", help="print 'topic payload'")
    what.add_argument("-N", action="store_true", dest="no_newline", help="no newline")
    what.add_argument("-F", dest="format", help="output format, as culex sub's")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    args.protocol_version = "5"  # request/response is MQTT 5
    shared = common(PROG, args)
    topic = args.topic or shared.topic_from_url
    if not topic or not args.response_topic:
        fail(PROG, "A topic (-t) and a response topic (-e) must be supplied.", shared.quiet)
    if not is_valid_topic_filter(args.response_topic):
        fail(PROG, f"Invalid response topic '{args.response_topic}'.", shared.quiet)
    if args.message is not None:
        payload = args.message.encode()
    elif args.file:
        try:
            with open(args.file, "rb") as file:
                payload = file.read()
        except OSError as exc:
            fail(PROG, f"Unable to read file \"{args.file}\": {exc.strerror}.", shared.quiet,
                 usage=False)
    elif args.stdin_file:
        payload = sys.stdin.buffer.read()
    elif args.null_message:
        payload = b""
    else:
        fail(PROG, "A request (-m, -f, -s or -n) must be supplied.", shared.quiet)
    formatter = Formatter(args.format) if args.format else None
    return asyncio.run(_request(shared, topic, payload, args, formatter))


async def _request(shared: Common, topic: str, payload: bytes, args: argparse.Namespace,
                   formatter: Formatter | None) -> int:
    properties = shared.properties["publish"]
    correlation = properties.correlation_data or os.urandom(8).hex().encode()
    properties = replace(properties, response_topic=args.response_topic,
                         correlation_data=correlation)
    answer: asyncio.Future[Publish] = asyncio.get_running_loop().create_future()

    def received(message: Publish) -> None:
        data = message.properties.correlation_data
        if not answer.done() and (data is None or data == correlation):
            answer.set_result(message)

    client = await connect(shared, on_message=received)

    def lost(closed: asyncio.Future[BaseException | None]) -> None:
        if not answer.done():
            answer.set_exception(closed.result() or ConnectionError("connection closed"))

    client.closed.add_done_callback(lost)
    [code] = await client.subscribe([SubscriptionRequest(args.response_topic, args.qos)])
    if code >= 0x80:
        err(shared, f"Error: subscription to the response topic refused: {reason_text(code)}")
        await client.disconnect()
        return 1
    code = await client.publish(topic, payload, args.qos, False, properties)
    if code >= 0x80:
        err(shared, f"Warning: Publish 1 failed: {reason_text(code)}.")
    try:
        message = await asyncio.wait_for(asyncio.shield(answer), args.timeout)
    except TimeoutError:
        err(shared, "Timed out")
        answer.cancel()  # no answer is awaited any more
        await client.disconnect()
        return TIMED_OUT
    except ConnectionError as exc:
        err(shared, f"Error: {exc}")
        return 1
    end = b"" if args.no_newline else b"\n"
    if formatter is not None:
        line = formatter(message, time.time())
    elif args.verbose:
        line = message.topic.encode() + b" " + bytes(message.payload)
    else:
        line = bytes(message.payload)
    sys.stdout.buffer.write(line + end)
    sys.stdout.buffer.flush()
    await client.disconnect()
    return 0
