"""What outlives the process: the store interface, and its in-memory and SQLite kinds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._store import (
    EMPTY,
    DeliveryState,
    Holder,
    MessageState,
    SessionState,
    Snapshot,
    Store,
    StoredDelivery,
    StoredMessage,
    StoredSession,
    StoredSubscription,
    StoredWill,
    StoreError,
    SubscriptionState,
)

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["EMPTY", "DeliveryState", "Holder", "MessageState", "SessionState", "Snapshot",
           "Store", "StoreError", "StoredDelivery", "StoredMessage", "StoredSession",
           "StoredSubscription", "StoredWill", "SubscriptionState", "open_store"]


def open_store(config: Config) -> Store:
    """The store the configuration asks for (not yet loaded)."""
    if not config.persistence:
        return Store()
    from ._sqlite import SqliteStore, default_directory  # the writer's modules only if used

    directory = config.persistence_location or default_directory()
    return SqliteStore(directory, config.durability, config.autosave_interval)
