#!/usr/bin/env python3
"""The laptop (or the phone) of the house: subscribes to `maison/#` and prints each reading.

    python3 examples/subscriber.py [--host localhost] [--port 1883] [--count N]
"""

from __future__ import annotations

import argparse
import sys

import paho.mqtt.client as mqtt

UNITS = {"temperature": "°C", "humidite": "%"}


def line(topic: str, payload: str) -> str:
    """``maison/salon/temperature`` and ``21.4`` make ``salon      temperature  21.4 °C``."""
    parts = topic.split("/")
    if len(parts) == 4 and parts[3] == "status":
        return f"{parts[1]:<10} {parts[2]:<12} {payload}"
    if len(parts) != 3:
        return f"{topic} {payload}"
    _, room, kind = parts
    unit = UNITS.get(kind, "")
    return f"{room:<10} {kind:<12} {payload} {unit}".rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--count", type=int, default=0, help="readings to print (0: forever)")
    args = parser.parse_args()
    printed = 0
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ordinateur-portable")

    def on_connect(c: mqtt.Client, userdata: object, flags: object, reason: object,
                   properties: object) -> None:
        c.subscribe("maison/#", qos=1)

    def on_message(c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        nonlocal printed
        print(line(message.topic, message.payload.decode("utf-8", "replace")), flush=True)
        printed += 1
        if args.count and printed >= args.count:
            c.disconnect()

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(args.host, args.port, keepalive=30)
    try:
        client.loop_forever()
    except KeyboardInterrupt:
        client.disconnect()
    sys.exit(0)


if __name__ == "__main__":
    main()
