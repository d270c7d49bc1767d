"""The topic-match cache under subscription churn, in process (no sockets): the router's cost
per matched message while devices come and go.

50,000 subscriptions (one per device: ``maison/<device>/cmd``, plus 20 wildcard watchers),
publishes on 5,000 sensor topics round robin, and one subscription added then removed every
``--churn`` publishes (a device connecting, another leaving; 0: none). Prints microseconds
per match, the subscription changes' cost included.

    python3 benchmarks/match_cache.py [--churn 10] [--publishes 200000]
"""

from __future__ import annotations

import argparse
import time

from culex.broker import Router, Session, Subscription
from culex.broker._session import Limits
from culex.observability import Counters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--churn", type=int, default=10, help="publishes per subscription change")
    parser.add_argument("--publishes", type=int, default=200_000)
    args = parser.parse_args()
    router = Router()
    counters, limits = Counters(), Limits()
    sessions = [Session(f"d{index}", 0, limits, counters) for index in range(50_000)]
    for index, session in enumerate(sessions):
        router.add(Subscription(session, f"maison/d{index}/cmd", 1))
    for index in range(20):
        router.add(Subscription(Session(f"w{index}", 0, limits, counters),
                                f"capteurs/+/piece{index}/#", 0))
    topics = [f"capteurs/s{index}/piece{index % 20}/temperature" for index in range(5_000)]
    for topic in topics:
        router.match(topic)  # warm
    churner = Session("churn", 0, limits, counters)
    started = time.perf_counter()
    for count in range(args.publishes):
        router.match(topics[count % len(topics)])
        if args.churn and count % args.churn == 0:
            sub = Subscription(churner, f"maison/new{count}/cmd", 1)
            router.add(sub)
            router.remove(sub)
    elapsed = time.perf_counter() - started
    print(f"{elapsed / args.publishes * 1e6:.2f} µs per match and subscription change "
          f"(one change every {args.churn} matches)")


if __name__ == "__main__":
    main()
