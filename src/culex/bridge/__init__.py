"""Bridges to other brokers (``[[bridge]]`` in TOML, ``connection`` in a mosquitto.conf):
imported only when one is configured."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._link import Link

if TYPE_CHECKING:
    from ..bridgeconfig import BridgeConfig
    from ..broker import Broker


class Bridges:
    """Every configured bridge of a running broker."""

    def __init__(self, configs: list[BridgeConfig], broker: Broker) -> None:
        self.links = [Link(config, broker) for config in configs]

    def start(self) -> None:
        for link in self.links:
            link.start()

    async def stop(self) -> None:
        for link in self.links:
            await link.stop()


__all__ = ["Bridges", "Link"]
