"""asyncio transports: TCP listeners feeding the sans-IO connections."""

from ._server import Server, run, serve
from ._tcp import MQTTProtocol

__all__ = ["MQTTProtocol", "Server", "run", "serve"]
