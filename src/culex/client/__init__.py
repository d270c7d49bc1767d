"""An MQTT client on asyncio and culex's codec, for the command-line tools (and bridges)."""

from ._client import Client, ConnectionLost, ConnectRefused
from ._options import ClientOptions, TLSOptions

__all__ = ["Client", "ClientOptions", "ConnectRefused", "ConnectionLost", "TLSOptions"]
