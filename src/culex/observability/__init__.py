"""What a running broker counts, for $SYS, Prometheus and the dashboard to read."""

from ._counters import CLOSE_REASONS, DROP_REASONS, REFUSAL_REASONS, Counters
from ._sampler import LogSampler

__all__ = ["CLOSE_REASONS", "DROP_REASONS", "REFUSAL_REASONS", "Counters", "LogSampler"]
