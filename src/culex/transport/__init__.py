"""asyncio transports: listeners feeding the sans-IO connections, and nothing else."""

from ._listen import start_listener
from ._setup import Gate
from ._tcp import MQTTProtocol
from ._tls import TLSListener

__all__ = ["Gate", "MQTTProtocol", "TLSListener", "start_listener"]
