"""MQTT topics and filters as NATS subjects (docs/cluster.md, "Topics as subjects").

Each level becomes one token: ASCII letters, digits and ``-`` as they are, every other byte
of the level's UTF-8 as ``_XX`` (two upper-case hex digits), an empty level as ``_`` alone.
The result never contains ``.``, whitespace, ``*`` or ``>`` inside a token, is never empty,
and decodes back to the topic exactly. Pure functions: no I/O, no NATS import.
"""

from __future__ import annotations

import re

SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
EMPTY = "_"
# A subject no topic has (no level encodes to "_none"): a consumer's filter while it wants
# nothing (an empty filter list would mean everything).
NOTHING = "_none"
_ESCAPED = re.compile(r"_([0-9A-F]{2})")
_TOKEN = re.compile(r"(?:[A-Za-z0-9-]|_[0-9A-F]{2})+|_")


def encode_level(level: str) -> str:
    if not level:
        return EMPTY
    if level.isascii() and level.replace("-", "").isalnum():
        return level  # the common case: nothing to escape
    out = []
    for byte in level.encode("utf-8"):
        out.append(chr(byte) if byte in SAFE else f"_{byte:02X}")
    return "".join(out)


def decode_level(token: str) -> str:
    """The level a token stands for; ValueError if it is not one ``encode_level`` makes."""
    if not _TOKEN.fullmatch(token):
        raise ValueError(f"not a culex subject token: {token!r}")
    if token == EMPTY:
        return ""
    if "_" not in token:
        return token
    raw = bytearray()
    position = 0
    for found in _ESCAPED.finditer(token):
        raw += token[position:found.start()].encode("ascii")
        raw.append(int(found.group(1), 16))
        position = found.end()
    raw += token[position:].encode("ascii")
    level = raw.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if encode_level(level) != token:  # "_41" for "A": one spelling per level, or none
        raise ValueError(f"not the canonical token of {level!r}: {token!r}")
    return level


def topic_subject(prefix: str, topic: str) -> str:
    """The subject of a topic name under ``prefix`` (``culex.m`` ...)."""
    return prefix + "." + ".".join(encode_level(level) for level in topic.split("/"))


def subject_topic(prefix: str, subject: str) -> str:
    """The topic of a subject made by ``topic_subject``; ValueError otherwise."""
    head = prefix + "."
    if not subject.startswith(head):
        raise ValueError(f"{subject!r} is not under {prefix!r}")
    return "/".join(decode_level(token) for token in subject[len(head):].split("."))


def filter_subjects(prefix: str, topic_filter: str) -> list[str]:
    """The subjects that together match at least what ``topic_filter`` matches (exactly
    that, but for ``$`` topics under a leading wildcard: the router drops those)."""
    levels = topic_filter.split("/")
    tokens = ["*" if level == "+" else ">" if level == "#" else encode_level(level)
              for level in levels]
    subjects = [prefix + "." + ".".join(tokens)]
    if len(levels) > 1 and levels[-1] == "#":
        # MQTT-4.7.1-2: "a/#" matches "a" too, which NATS' "a.>" does not.
        subjects.insert(0, prefix + "." + ".".join(tokens[:-1]))
    return subjects
