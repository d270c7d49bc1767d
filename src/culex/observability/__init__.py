"""What a running broker counts, for $SYS, Prometheus and the dashboard to read."""

from ._counters import CLOSE_REASONS, DROP_REASONS, REFUSAL_REASONS, Counters
from ._gauges import Gauges
from ._logs import configure_logging, parse_dest, reopen_logs
from ._notify import notify
from ._sampler import LogSampler
from ._sys import SysTree

__all__ = ["CLOSE_REASONS", "DROP_REASONS", "REFUSAL_REASONS", "Counters", "Gauges",
           "LogSampler", "SysTree", "configure_logging", "notify", "parse_dest", "reopen_logs"]
