"""Several culex nodes acting as one broker, on NATS JetStream (docs/cluster.md).

Imported only when a ``[cluster]`` section is configured; ``ClusterNode`` (which imports
nats-py) is loaded on first use, so the pure parts (subjects, envelopes) need no NATS client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._node import ClusterNode
    from ._sessions import SessionStore

__all__ = ["ClusterNode", "SessionStore"]


def __getattr__(name: str) -> Any:
    if name == "ClusterNode":
        from ._node import ClusterNode

        return ClusterNode
    if name == "SessionStore":
        from ._sessions import SessionStore

        return SessionStore
    raise AttributeError(name)
