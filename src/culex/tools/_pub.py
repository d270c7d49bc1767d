"""``culex pub``: mosquitto_pub's options and behaviour, on culex's client."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ..protocol import MQTT_5, is_valid_topic_name
from ._args import Common, common, fail, parser
from ._connect import connect, err, reason_text

PROG = "culex pub"


def build_parser() -> argparse.ArgumentParser:
    p = parser(PROG, "Publish one message, a file, stdin, or one message per line of stdin, "
                     "then disconnect (mosquitto_pub's options).")
    what = p.add_argument_group("what to publish")
    what.add_argument("-t", "--topic", help="topic to publish to")
    source = what.add_mutually_exclusive_group()
    source.add_argument("-m", "--message", help="the message")
    source.add_argument("-f", "--file", help="send the contents of a file")
    source.add_argument("-s", "--stdin-file", action="store_true",
                        help="send all of stdin as one message")
    source.add_argument("-l", "--stdin-line", action="store_true",
                        help="send each line of stdin as a message (empty lines too)")
    source.add_argument("-n", "--null-message", action="store_true",
                        help="send an empty message")
    what.add_argument("-r", "--retain", action="store_true", help="retain the message")
    what.add_argument("--repeat", type=int, default=1, help="publish N times (-m, -f, -s)")
    what.add_argument("--repeat-delay", type=float, default=0.0,
                      help="seconds between repeats")
    what.add_argument("-M", "--max-inflight", type=int, default=20,
                      help="QoS 1/2 messages unacknowledged at once (default 20)")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    shared = common(PROG, args)
    topic = args.topic or shared.topic_from_url
    if not topic:
        fail(PROG, "Both topic and message must be supplied.", shared.quiet)
    if not is_valid_topic_name(topic):
        fail(PROG, f"Invalid publish topic '{topic}', does it contain '+' or '#'?",
             shared.quiet)
    if args.message is not None:
        payloads = [args.message.encode()] * args.repeat
    elif args.file:
        try:
            with open(args.file, "rb") as file:
                payloads = [file.read()] * args.repeat
        except OSError as exc:
            fail(PROG, f"Unable to read file \"{args.file}\": {exc.strerror}.", shared.quiet,
                 usage=False)
    elif args.stdin_file:
        payloads = [sys.stdin.buffer.read()] * args.repeat
    elif args.null_message:
        payloads = [b""] * args.repeat
    elif args.stdin_line:
        payloads = []  # read as they come, below
    else:
        fail(PROG, "Both topic and message must be supplied.", shared.quiet)
    return asyncio.run(_publish(shared, topic, payloads, args))


async def _publish(shared: Common, topic: str, payloads: list[bytes],
                   args: argparse.Namespace) -> int:
    qos, retain, delay = args.qos, args.retain, args.repeat_delay
    client = await connect(shared, receive_maximum=max(1, args.max_inflight))
    properties = shared.properties["publish"] if shared.options.version == MQTT_5 else None
    pending: list[asyncio.Task[int]] = []
    count = 0

    async def one(payload: bytes) -> None:
        nonlocal count
        count += 1
        number = count
        if properties is None:
            task = asyncio.ensure_future(client.publish(topic, payload, qos, retain))
        else:
            task = asyncio.ensure_future(client.publish(topic, payload, qos, retain,
                                                        properties))
        task.add_done_callback(lambda t: _report(shared, number, t))
        pending.append(task)
        if not qos:
            await task  # QoS 0: written in order, and the write buffer's limits respected

    if args.stdin_line:
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.buffer.readline):
            await one(line.rstrip(b"\n").removesuffix(b"\r"))
    else:
        for index, payload in enumerate(payloads):
            if index and delay:
                await asyncio.sleep(delay)
            await one(payload)
    if pending:
        await asyncio.wait(pending)
    if client.closed.done():
        err(shared, f"Error: {client.closed.result()}")
        return 1
    await client.disconnect()
    return 0


def _report(shared: Common, number: int, task: asyncio.Task[int]) -> None:
    if task.cancelled() or task.exception() is not None:
        return
    code = task.result()
    if code >= 0x80:
        err(shared, f"Warning: Publish {number} failed: {reason_text(code)}.")
