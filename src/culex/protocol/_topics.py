"""Topic names and topic filters (MQTT 5.0 section 4.7, 3.1.1 section 4.7)."""

from __future__ import annotations

SHARE_PREFIX = "$share/"


def is_valid_topic_name(topic: str) -> bool:
    """A name one may publish to: not empty, no wildcard (MQTT-4.7.3-1, MQTT-3.3.2-2)."""
    return bool(topic) and "+" not in topic and "#" not in topic


def is_valid_topic_filter(topic_filter: str) -> bool:
    """``#`` only as the whole last level, ``+`` only as a whole level, not empty.

    MQTT-4.7.1-1 (3.1.1: -2), MQTT-4.7.1-2 (3.1.1: -3), MQTT-4.7.3-1.
    """
    if not topic_filter:
        return False
    if "+" not in topic_filter and "#" not in topic_filter:
        return True
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != last):
            return False
        if "+" in level and level != "+":
            return False
    return True


def parse_shared(topic_filter: str) -> tuple[str, str] | None:
    """``(group, filter)`` for ``$share/group/filter``, ``None`` for an ordinary filter.

    Raises ValueError for a malformed shared subscription (MQTT 5.0 4.8.2): the share name must
    be non-empty without ``/``, ``+`` or ``#``, and a filter must follow it.
    """
    if not topic_filter.startswith(SHARE_PREFIX):
        return None
    group, sep, rest = topic_filter[len(SHARE_PREFIX):].partition("/")
    if not group or not sep or "+" in group or "#" in group:
        raise ValueError("malformed shared subscription")
    if not is_valid_topic_filter(rest):
        raise ValueError("invalid topic filter in shared subscription")
    return group, rest


def parse_filter(topic_filter: str) -> tuple[str | None, str]:
    """``(group, filter)`` of any topic filter a client may send: group is the share name of
    ``$share/group/filter`` (MQTT 5.0 4.8.2), None for an ordinary filter. Raises ValueError
    for a filter that is not valid either way."""
    shared = parse_shared(topic_filter)
    if shared is not None:
        return shared
    if not is_valid_topic_filter(topic_filter):
        raise ValueError("invalid topic filter")
    return None, topic_filter


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches ``topic_filter``, by the rules of MQTT 4.7.

    The router uses a trie; this plain version is the reference the tests compare it with.
    """
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False  # MQTT-4.7.2-1
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    for index, f_level in enumerate(f_levels):
        if f_level == "#":
            return True  # also matches the parent level: "a/#" matches "a" (4.7.1.2)
        if index >= len(t_levels):
            return False
        if f_level != "+" and f_level != t_levels[index]:
            return False
    return len(f_levels) == len(t_levels)
