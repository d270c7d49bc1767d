"""asyncio transports: listeners feeding the sans-IO connections, and nothing else."""

from ._listen import start_listener
from ._setup import Gate, peer_name
from ._tcp import MQTTProtocol
from ._tls import TLSListener
from ._tls_stream import TLSStream

__all__ = ["Gate", "MQTTProtocol", "TLSListener", "TLSStream", "peer_name", "start_listener"]
