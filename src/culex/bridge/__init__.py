"""Bridges to other brokers (``[[bridge]]`` in TOML, ``connection`` in a mosquitto.conf):
imported only when one is configured."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._link import Link

log = logging.getLogger("culex")

if TYPE_CHECKING:
    from ..bridgeconfig import BridgeConfig
    from ..broker import Broker


class Bridges:
    """Every configured bridge of a running broker."""

    def __init__(self, configs: list[BridgeConfig], broker: Broker) -> None:
        self.broker = broker
        self.links = [Link(config, broker) for config in configs]

    def start(self) -> None:
        for link in self.links:
            link.start()

    async def stop(self) -> None:
        for link in self.links:
            await link.stop()

    async def update(self, configs: list[BridgeConfig]) -> None:
        """Bridges added, removed or changed in the configuration (SIGHUP): the others, and
        the clients, are left alone. A removed bridge's session stays (with what it holds)
        until a bridge of that name comes back."""
        wanted = {config.name: config for config in configs}
        kept = []
        for link in self.links:
            config = wanted.pop(link.config.name, None)
            if config is not None and config == link.config:
                kept.append(link)
                continue
            await link.stop()
            log.info("bridge %s: %s", link.config.name,
                     "removed" if config is None else "changed: restarting it")
            if config is not None:
                wanted[config.name] = config
        for config in wanted.values():
            link = Link(config, self.broker)
            link.start()
            kept.append(link)
            if config.name not in {k.config.name for k in self.links}:
                log.info("bridge %s: added", config.name)
        self.links = kept


__all__ = ["Bridges", "Link"]
