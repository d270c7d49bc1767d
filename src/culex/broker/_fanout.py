"""Fan-out: one message to every matching subscription, once per session.

Routing (matching, access check, QoS downgrade, No Local, shared-group pick) is here; delivery
(queues, in-flight window, accounting) is the sessions'. Read permissions are checked per
delivery and remembered per session and topic, as sensors publish on the same topics again
and again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..auth import Action
from ..protocol import topic_matches
from ._router import Subscription

if TYPE_CHECKING:
    from ..auth import AuthChain
    from ..observability import Counters
    from ..persistence import Store
    from ._message import Message
    from ._retained import RetainedStore
    from ._router import Node, Router
    from ._session import Session

# Topics whose read answer is remembered per session, before that memory is emptied.
READ_CACHE_SIZE = 4096


class Fanout:
    def __init__(self, router: Router, retained: RetainedStore, store: Store, auth: AuthChain,
                 counters: Counters) -> None:
        self._router = router
        self._retained = retained
        self._store = store
        self._auth = auth
        self._counters = counters
        self._read_allowed: dict[Session, dict[str, bool]] = {}
        self._observer: Callable[[Message], None] | None = None

    def observe(self, observer: Callable[[Message], None] | None) -> None:
        """Show every routed message (not $SYS values) to ``observer``, e.g. the dashboard's
        topic tree, before it is delivered; None stops. It must be quick: it runs on the hot
        path, and is not a subscriber (a message it sees may still have none)."""
        self._observer = observer

    def publish(self, message: Message, system: bool = False, clustered: bool = False) -> int:
        """Deliver ``message`` to every matching subscription; the number of sessions.
        ``system``: a $SYS value, retained in memory only and not counted as dropped.
        ``clustered``: in a cluster, retained messages come from the cluster's stream (in its
        one order) and shared groups are served by the cluster (one member of all nodes'),
        so neither is done here."""
        if self._observer is not None and not system:
            self._observer(message)
        if message.retain and not clustered:
            self._retained.set(message)
            if not system:
                self._store.retained_changed(message.topic, message)
        found, groups = self._router.match(message.topic)
        checked = bool(self._auth.authorizers)
        # In a cluster, a persistent session's QoS 1 and 2 messages come from its store
        # (JetStream), which keeps them for it wherever it goes: not from here as well.
        streamed = bool(message.qos and self._store.streams)
        count = 0
        if len(found) == 1:
            subs = found[0].subs
            if isinstance(subs, Subscription):
                count = self._offer(message, subs, subs.session.client_id, checked, streamed)
            elif subs is not None:
                for client_id, sub in subs.items():
                    count += self._offer(message, sub, client_id, checked, streamed)
        elif found:
            count += self._deliver_overlapping(message, found, checked, streamed)
        for group in () if clustered else groups:
            picked = group.pick()
            if picked is not None and not (checked and not self.may_receive(picked.session,
                                                                            message.topic)):
                _deliver_one(message, picked)
                count += 1
        if not count and not system:
            self._counters.dropped["no_subscribers"] += 1
        return count

    def _offer(self, message: Message, sub: Subscription, client_id: str, checked: bool,
               streamed: bool) -> int:
        """``message`` to one subscription of its client; 1 if it counts as delivered."""
        if sub.no_local and client_id == message.sender:
            return 0  # MQTT-3.8.3-3 (5.0)
        if streamed and sub.session.store is not None:
            return 1
        if checked and not self.may_receive(sub.session, message.topic):
            return 0
        _deliver_one(message, sub)
        return 1

    def _deliver_overlapping(self, message: Message, found: list[Node], checked: bool,
                             streamed: bool) -> int:
        sender = message.sender
        by_client: dict[str, list[Subscription]] = {}
        streamed_to: set[str] = set()
        for node in found:
            subs = node.subs
            if subs is None:
                continue
            pairs = (((subs.session.client_id, subs),) if isinstance(subs, Subscription)
                     else subs.items())
            for client_id, sub in pairs:
                if sub.no_local and client_id == sender:
                    continue
                if streamed and sub.session.store is not None:
                    streamed_to.add(client_id)
                    continue
                if checked and not self.may_receive(sub.session, message.topic):
                    continue
                same = by_client.get(client_id)
                if same is None:
                    by_client[client_id] = [sub]
                else:
                    same.append(sub)
        for same in by_client.values():
            _deliver_several(message, same)
        return len(by_client) + len(streamed_to)

    def deliver_to_session(self, session: Session, message: Message) -> bool:
        """In a cluster: ``message``, which the session's store kept for it, goes to it
        through its matching subscriptions (not shared ones: those are the groups');
        whether it had one (that may read it)."""
        topic = message.topic
        subs = [sub for sub in session.subscriptions.values()
                if sub.group is None and topic_matches(sub.match_filter, topic)
                and not (sub.no_local and session.client_id == message.sender)]
        if not subs or (self._auth.authorizers and not self.may_receive(session, topic)):
            return False
        _deliver_several(message, subs)
        return True

    def deliver_to_group(self, message: Message, topic_filter: str, group: str) -> bool:
        """In a cluster: ``message`` goes to one local member of ``$share/group/filter``;
        whether there was one (that may read it)."""
        members = self._router.shared_group(topic_filter, group)
        picked = members.pick() if members is not None else None
        if picked is None or (self._auth.authorizers
                              and not self.may_receive(picked.session, message.topic)):
            return False
        _deliver_one(message, picked)
        return True

    def may_receive(self, session: Session, topic: str) -> bool:
        """The read check of every delivery, remembered per session and topic."""
        cache = self._read_allowed.get(session)
        if cache is None:
            cache = self._read_allowed[session] = {}
        allowed = cache.get(topic)
        if allowed is None:
            client = session.client
            allowed = client is None or self._auth.authorize(client, Action.RECEIVE, topic)
            if len(cache) > READ_CACHE_SIZE:
                cache.clear()
            cache[topic] = allowed
        return allowed

    def forget(self, session: Session | None = None) -> None:
        """Remembered answers are stale: for ``session`` (its client changed), or all."""
        if session is None:
            self._read_allowed.clear()
        else:
            self._read_allowed.pop(session, None)


def _deliver_several(message: Message, same: list[Subscription]) -> None:
    """Overlapping subscriptions of one client give one delivery at the highest QoS, with
    every subscription identifier (MQTT-3.3.4-2, MQTT-3.3.4-3, MQTT-3.3.4-4)."""
    if len(same) == 1:
        _deliver_one(message, same[0])
        return
    qos = min(message.qos, max(sub.qos for sub in same))
    retain = message.retain and any(sub.retain_as_published for sub in same)
    ids = tuple(sub.identifier for sub in same if sub.identifier)
    same[0].session.deliver(message, qos, retain, ids)


def _deliver_one(message: Message, sub: Subscription) -> None:
    # MQTT-3.3.1-12, -13: RETAIN is kept only for Retain As Published subscriptions
    # (3.1.1: always cleared, MQTT-3.3.1-9).
    sub.session.deliver(message, min(message.qos, sub.qos),
                        message.retain and sub.retain_as_published,
                        (sub.identifier,) if sub.identifier else ())
