"""MQTT topics and filters as NATS subjects: reversible, safe for every legal topic, and a
filter's subjects match exactly the topics the filter matches (property tests)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from culex.cluster._subjects import (
    decode_level,
    encode_level,
    filter_subjects,
    subject_topic,
    topic_subject,
)
from culex.protocol import topic_matches

# Levels drawn to hit every awkward case: dots, spaces, NATS wildcards, the escape character,
# leading $, empty levels, non-ASCII, and plain words.
awkward = st.sampled_from([".", " ", "*", ">", "_", "$", "$SYS", "é", "温度", "a.b", "_41", "-",
                           "\t", "\u2028", "salon", "x y", ""])
level = st.one_of(awkward, st.text(st.characters(blacklist_categories=("Cs",),
                                                 blacklist_characters="\x00/+#"), max_size=8))
topics = st.lists(level, min_size=1, max_size=6).map("/".join).filter(bool)
filter_level = st.one_of(level, st.just("+"))
filters = st.tuples(st.lists(filter_level, min_size=1, max_size=5), st.booleans()).map(
    lambda parts: "/".join(parts[0] + (["#"] if parts[1] else [])))


def nats_matches(subject_filter: str, subject: str) -> bool:
    """NATS' own rule: tokens split on '.', '*' one token, '>' one or more at the end."""
    wanted, tokens = subject_filter.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or (token != "*" and token != tokens[index]):
            return False
    return len(wanted) == len(tokens)


@given(topics)
def test_topics_round_trip_through_safe_subjects(topic: str) -> None:
    subject = topic_subject("culex.m", topic)
    assert subject_topic("culex.m", subject) == topic
    tokens = subject.split(".")[2:]
    assert len(tokens) == topic.count("/") + 1
    for token in tokens:
        assert token and token not in ("*", ">")
        assert token.isascii() and token.isprintable() and " " not in token


@given(topics, topics)
def test_different_topics_have_different_subjects(one: str, other: str) -> None:
    assert (topic_subject("p", one) == topic_subject("p", other)) == (one == other)


@given(filters, topics)
def test_a_filter_s_subjects_match_what_the_filter_matches(topic_filter: str,
                                                           topic: str) -> None:
    subject = topic_subject("culex.q0", topic)
    by_nats = any(nats_matches(s, subject) for s in filter_subjects("culex.q0", topic_filter))
    by_mqtt = topic_matches(topic_filter, topic)
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        assert not by_mqtt  # NATS may let it through: the node's router drops it
    else:
        assert by_nats == by_mqtt


def test_examples() -> None:
    assert topic_subject("culex.m", "maison/salon/temperature") == \
        "culex.m.maison.salon.temperature"
    assert topic_subject("culex.m", "$SYS/a.b/ /*/>/é//_") == \
        "culex.m._24SYS.a_2Eb._20._2A._3E._C3_A9._._5F"
    assert filter_subjects("culex.m", "maison/+/temperature") == ["culex.m.maison.*.temperature"]
    assert filter_subjects("culex.m", "maison/#") == ["culex.m.maison", "culex.m.maison.>"]
    assert filter_subjects("culex.m", "#") == ["culex.m.>"]


@pytest.mark.parametrize("token", ["", "a.b", "*", ">", "_4", "_4g", "_41", "a b", "_FF"])
def test_tokens_culex_did_not_make_are_refused(token: str) -> None:
    with pytest.raises(ValueError):
        decode_level(token)


@given(level)
def test_levels_round_trip(value: str) -> None:
    assert decode_level(encode_level(value)) == value
