"""Topic rules, and the subscription trie and retained tree checked against the plain matcher."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from culex.broker import Message, RetainedStore, Router, Session, Subscription
from culex.broker._outgoing import Limits
from culex.broker._router import MATCH_CACHE_SIZE
from culex.observability import Counters
from culex.protocol import is_valid_topic_filter, is_valid_topic_name, parse_shared, topic_matches

# Small alphabets so that generated filters and topics actually meet.
level = st.sampled_from(["a", "b", "", "$SYS", "$x", "c d"])
topics = st.lists(level, min_size=1, max_size=4).map("/".join).filter(is_valid_topic_name)
filter_level = st.sampled_from(["a", "b", "", "$SYS", "+"])


@st.composite
def filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(filter_level, min_size=1, max_size=4))
    if draw(st.booleans()):
        levels.append("#")
    return "/".join(levels)


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), [
    ("sport/tennis/player1/#", "sport/tennis/player1", True),  # 4.7.1.2
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/#", "sport", True),
    ("#", "sport/tennis", True),
    ("sport/+", "sport", False),  # 4.7.1.3
    ("sport/+", "sport/", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("#", "$SYS/uptime", False),  # MQTT-4.7.2-1
    ("+/monitor/Clients", "$SYS/monitor/Clients", False),
    ("$SYS/#", "$SYS/monitor/Clients", True),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ("a/b", "a/b/c", False),
    ("a/b/c", "a/b", False),
])
def test_spec_examples(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected
    router = Router()
    session = Session("c", 0, Limits(), Counters())
    router.add(Subscription(session, topic_filter, 0))
    found, _ = router.match(topic)
    assert bool(found) is expected


@pytest.mark.parametrize("valid", ["a", "#", "+", "a/#", "+/+/#", "/", "a//b", "+/", " "])
def test_valid_filters(valid: str) -> None:
    assert is_valid_topic_filter(valid)


@pytest.mark.parametrize("invalid", ["", "a#", "a/#/b", "a/b#", "a+", "+a/b", "a/++", "##"])
def test_invalid_filters(invalid: str) -> None:
    """3.1.1: MQTT-4.7.1-2, -3, 3.1.1: MQTT-4.7.3-1."""
    assert not is_valid_topic_filter(invalid)  # MQTT-4.7.1-1, -2, MQTT-4.7.3-1


@pytest.mark.parametrize("invalid", ["", "a/+", "#", "a/#"])
def test_invalid_topic_names(invalid: str) -> None:
    assert not is_valid_topic_name(invalid)


def test_shared_subscription_parsing() -> None:
    """MQTT-4.8.2-1, -2."""
    assert parse_shared("a/b") is None
    assert parse_shared("$share/g/a/+") == ("g", "a/+")
    for bad in ("$share/g", "$share//a", "$share/g+/a", "$share/g/a#"):
        with pytest.raises(ValueError):
            parse_shared(bad)


@given(st.lists(filters(), max_size=8), topics)
def test_router_matches_like_the_reference(subscribed: list[str], topic: str) -> None:
    """MQTT-3.3.2-3; 3.1.1: MQTT-3.3.2-3."""
    router = Router()
    sessions = []
    for index, topic_filter in enumerate(subscribed):
        session = Session(f"c{index}", 0, Limits(), Counters())
        sessions.append(session)
        router.add(Subscription(session, topic_filter, 0))
    found, _ = router.match(topic)
    got = sorted(sub.session.client_id for node in found for sub in node.subscribers())
    expected = sorted(f"c{i}" for i, f in enumerate(subscribed) if topic_matches(f, topic))
    assert got == expected


@given(st.lists(filters(), min_size=1, max_size=8), st.data())
def test_router_removal_leaves_no_trace(subscribed: list[str], data: st.DataObject) -> None:
    router = Router()
    session = Session("c", 0, Limits(), Counters())
    for topic_filter in subscribed:
        router.add(Subscription(session, topic_filter, 0))
    for topic_filter in set(subscribed):
        sub = Subscription(session, topic_filter, 0)
        assert router.remove(sub)
        assert not router.remove(sub)
    assert router.count == 0
    assert router._root.is_empty()  # every branch pruned
    assert router.match(data.draw(topics)) == ([], [])


@given(st.sets(topics, max_size=8), filters())
def test_retained_store_matches_like_the_reference(stored: set[str], topic_filter: str) -> None:
    store = RetainedStore()
    for topic in stored:
        store.set(Message(topic, b"x", retain=True))
    got = sorted(m.topic for m in store.match(topic_filter))
    assert got == sorted(t for t in stored if topic_matches(topic_filter, t))


def test_retained_store_replaces_and_deletes() -> None:
    store = RetainedStore()
    store.set(Message("a/b", b"1", retain=True))
    store.set(Message("a/b", b"2", retain=True))  # MQTT-3.3.1-5
    assert store.count == 1
    assert [m.payload for m in store.match("a/#")] == [b"2"]
    store.set(Message("a/b", b"", retain=True))  # MQTT-3.3.1-6, -7
    assert store.count == 0
    assert list(store.match("#")) == []
    assert store._root.children == {}


operations = st.lists(st.tuples(st.sampled_from(["add", "remove", "match"]), filters(), topics,
                                st.integers(0, 3), st.booleans(), st.integers(0, 2)),
                      max_size=40)


@given(operations)
def test_the_match_cache_stays_true_through_subscription_changes(
        steps: list[tuple[str, str, str, int, bool, int]]) -> None:
    """Cached results are forgotten only for what a changed filter matches: every match,
    whatever came before, is still what the reference matcher says, with the options of the
    subscription that replaced another (a filter's one subscriber is held alone, several in a
    dict, and back)."""
    router = Router()
    sessions = [Session(f"c{index}", 0, Limits(), Counters()) for index in range(4)]
    live: dict[tuple[int, str, str | None], int] = {}  # -> QoS
    for step, topic_filter, topic, who, shared, qos in steps:
        group = "g" if shared else None
        full = f"$share/g/{topic_filter}" if shared else topic_filter
        sub = Subscription(sessions[who], full, qos, group=group, match_filter=topic_filter)
        if step == "add":
            router.add(sub)
            live[(who, topic_filter, group)] = qos
        elif step == "remove":
            router.remove(sub)
            live.pop((who, topic_filter, group), None)
        else:
            found, groups = router.match(topic)
            assert sorted((sub.session.client_id, sub.match_filter, sub.qos)
                          for node in found for sub in node.subscribers()) == sorted(
                (f"c{w}", f, q) for (w, f, g), q in live.items()
                if g is None and topic_matches(f, topic))
            assert sorted(cid for grp in groups for cid in grp.members) == sorted(
                f"c{w}" for w, f, g in live if g is not None and topic_matches(f, topic))


def test_a_cached_match_sees_a_replaced_subscription_and_a_second_subscriber() -> None:
    """MQTT-3.8.4-3: a subscription to the same filter replaces the session's own, cached
    match or not; a filter's subscriber held alone becomes two, and one again."""
    router = Router()
    one, two = (Session(name, 0, Limits(), Counters()) for name in ("one", "two"))

    def matched() -> list[tuple[str, int]]:
        found, _ = router.match("a/b")
        return sorted((sub.session.client_id, sub.qos)
                      for node in found for sub in node.subscribers())

    assert not router.add(Subscription(one, "a/b", 0))
    assert matched() == [("one", 0)]
    assert router.add(Subscription(one, "a/b", 2))  # replaced
    assert matched() == [("one", 2)]
    assert not router.add(Subscription(two, "a/b", 1))
    assert matched() == [("one", 2), ("two", 1)]
    assert router.remove(Subscription(one, "a/b", 0))
    assert matched() == [("two", 1)]
    assert router.add(Subscription(two, "a/b", 0))
    assert matched() == [("two", 0)]
    assert router.remove(Subscription(two, "a/b", 0)) and matched() == []
    assert router.count == 0


def test_a_sessions_subscriptions_one_alone_several_and_back() -> None:
    session = Session("c", 0, Limits(), Counters())

    def held() -> list[tuple[str, int]]:
        return sorted((f, sub.qos) for f, sub in session.subscriptions.items())

    assert held() == [] and session.unsubscribe("a") is None
    session.subscribe(Subscription(session, "a", 0))
    session.subscribe(Subscription(session, "a", 1))  # MQTT-3.8.4-3: replaced
    assert held() == [("a", 1)]
    session.subscribe(Subscription(session, "b/#", 2))
    assert held() == [("a", 1), ("b/#", 2)]
    assert session.unsubscribe("z") is None and len(session.subscriptions) == 2
    removed = session.unsubscribe("a")
    assert removed is not None and removed.qos == 1 and held() == [("b/#", 2)]
    assert session.unsubscribe("a") is None and held() == [("b/#", 2)]
    session.subscribe(Subscription(session, "c", 0))
    assert [sub.topic_filter for sub in sorted(session.end(), key=lambda s: s.topic_filter)] \
        == ["b/#", "c"]
    assert held() == []


def test_a_full_match_cache_forgets_the_least_recently_used() -> None:
    router = Router()
    router.add(Subscription(Session("c", 0, Limits(), Counters()), "s/#", 0))
    router.match("s/hot")
    for index in range(MATCH_CACHE_SIZE + 100):
        router.match(f"s/{index}")
        if index % 1000 == 0:
            router.match("s/hot")  # used all along: kept
    assert len(router._cache) + len(router._older) <= MATCH_CACHE_SIZE
    assert "s/hot" in {**router._older, **router._cache}
    assert "s/0" not in {**router._older, **router._cache}
