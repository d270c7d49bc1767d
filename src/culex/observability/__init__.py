"""What a running broker counts, for $SYS, Prometheus and the dashboard to read."""

from ._counters import CLOSE_REASONS, DROP_REASONS, REFUSAL_REASONS, Counters

__all__ = ["CLOSE_REASONS", "DROP_REASONS", "REFUSAL_REASONS", "Counters"]
