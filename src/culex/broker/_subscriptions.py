"""SUBSCRIBE and UNSUBSCRIBE: which filters are accepted, at what QoS, and which retained
messages a new subscription is sent (MQTT 5.0 3.8, 3.10; 3.1.1 3.8, 3.10)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..auth import Action
from ..protocol import (
    MQTT_5,
    MQTTError,
    ReasonCode,
    Subscribe,
    SubscriptionRequest,
    Unsubscribe,
    parse_filter,
    protocol_error,
)
from ._message import Message
from ._router import Subscription

if TYPE_CHECKING:
    from ..auth import AuthChain
    from ..config import Config
    from ..persistence import Store
    from ._fanout import Fanout
    from ._retained import RetainedStore
    from ._router import Router
    from ._session import Session

# (message, QoS, subscription identifiers) of a retained message to send after a SUBACK.
RetainedDelivery = tuple[Message, int, tuple[int, ...]]


class Subscriptions:
    def __init__(self, config: Config, router: Router, retained: RetainedStore, store: Store,
                 auth: AuthChain, fanout: Fanout, clock: Callable[[], float]) -> None:
        self._config = config
        self._router = router
        self._retained = retained
        self._store = store
        self._auth = auth
        self._fanout = fanout
        self._clock = clock

    def subscribe(self, session: Session, version: int, packet: Subscribe
                  ) -> tuple[list[int], Iterator[RetainedDelivery]]:
        """Add the subscriptions; the SUBACK codes and the retained messages to send, found
        as they are taken (a subscription to "#" may match 100,000: see
        Session.stream_retained)."""
        ids = packet.properties.subscription_identifiers
        identifier = ids[0] if ids else None
        if identifier is not None and not self._config.subscription_identifiers_available:
            raise MQTTError(ReasonCode.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
                            "subscription identifiers are not available")  # MQTT 5.0 3.2.2.3.12
        codes: list[int] = []
        wanted: list[tuple[str, int, tuple[int, ...]]] = []  # (filter, QoS, identifiers)
        for request in packet.subscriptions:
            refusal, group, match_filter = self._check(session, version, request)
            if refusal is not None:
                codes.append(refusal)
                continue
            qos = min(request.qos, self._config.max_qos)
            sub = Subscription(session, request.topic_filter, qos, no_local=request.no_local,
                               retain_as_published=request.retain_as_published,
                               retain_handling=request.retain_handling,
                               identifier=identifier, group=group, match_filter=match_filter)
            existed = self._router.add(sub)
            session.subscribe(sub)
            codes.append(qos)
            # MQTT-3.3.1-9..11 (5.0); 3.1.1 always sends them (MQTT-3.8.4-3). Shared
            # subscriptions get no retained messages (MQTT 5.0 4.8.2).
            handling = request.retain_handling
            if group is None and (handling == 0 or (handling == 1 and not existed)):
                wanted.append((match_filter, qos, (identifier,) if identifier else ()))
        return codes, self._retained_for(session, wanted)

    def _retained_for(self, session: Session, wanted: list[tuple[str, int, tuple[int, ...]]]
                      ) -> Iterator[RetainedDelivery]:
        for match_filter, qos, sub_ids in wanted:
            # Once per filter: the session checks expiry again as it sends each one.
            now = self._clock()
            for message in self._retained.match(match_filter):
                if message.expired(now):
                    self._expire(message)  # MQTT-3.3.2-5: deleted, not sent
                elif not (self._auth.authorizers
                          and not self._fanout.may_receive(session, message.topic)):
                    yield message, min(message.qos, qos), sub_ids

    def _expire(self, message: Message) -> None:
        if self._retained.get(message.topic) is message:
            self._retained.set(Message(message.topic, b""))
            self._store.retained_changed(message.topic, None)

    def _check(self, session: Session, version: int, request: SubscriptionRequest
               ) -> tuple[int | None, str | None, str]:
        """(refusal code or None, share name, filter to match) of one subscription request;
        raises MQTTError where MQTT 5 makes a refusal a protocol error."""
        v5 = version == MQTT_5
        invalid = ReasonCode.TOPIC_FILTER_INVALID if v5 else 0x80
        config = self._config
        try:
            group, match_filter = parse_filter(request.topic_filter)
        except ValueError:
            return invalid, None, ""
        if group is not None:
            if not config.shared_subscription_available:
                if v5:  # MQTT 5.0 3.2.2.3.13
                    raise MQTTError(ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
                                    "shared subscriptions are not available")
                return 0x80, group, match_filter
            if request.no_local:
                raise protocol_error("No Local on a shared subscription")  # MQTT-3.8.3-4
        if not config.wildcard_subscription_available and (
                "+" in match_filter or "#" in match_filter):
            if v5:  # MQTT 5.0 3.2.2.3.11
                raise MQTTError(ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
                                "wildcard subscriptions are not available")
            return 0x80, group, match_filter
        client = session.client
        if (self._auth.authorizers and client is not None
                and not self._auth.authorize(client, Action.SUBSCRIBE, match_filter)):
            return (ReasonCode.NOT_AUTHORIZED if v5 else 0x80), group, match_filter
        return None, group, match_filter

    def unsubscribe(self, session: Session, packet: Unsubscribe) -> list[int]:
        codes: list[int] = []
        for topic_filter in packet.topic_filters:
            sub = session.unsubscribe(topic_filter)
            if sub is not None:
                self._router.remove(sub)
                codes.append(ReasonCode.SUCCESS)
                continue
            try:
                parse_filter(topic_filter)
            except ValueError:
                codes.append(ReasonCode.TOPIC_FILTER_INVALID)
            else:
                codes.append(ReasonCode.NO_SUBSCRIPTION_EXISTED)
        return codes
