"""Client tools that work against any MQTT broker: ``culex pub``, ``sub`` and ``rr`` with
mosquitto's options, and ``culex bench``, a load generator."""

from __future__ import annotations

import importlib

TOOLS = {"pub": "Publish messages (mosquitto_pub's options)",
         "sub": "Subscribe and print messages (mosquitto_sub's options)",
         "rr": "Request and response (mosquitto_rr's options)",
         "bench": "Load a broker and measure it (emqtt-bench's options)"}


def run_tool(name: str, argv: list[str]) -> int:
    """Run tool ``name`` with its arguments; its exit status."""
    module = importlib.import_module(f"._{name}", __name__)
    status: int = module.main(argv)
    return status
