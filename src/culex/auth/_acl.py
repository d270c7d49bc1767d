"""Access control lists in Mosquitto's ``acl_file`` syntax.

    # lines before any "user" line apply to clients without a user name
    topic read public/#
    user alice
    topic readwrite home/#
    topic deny home/secret
    pattern write devices/%u/#      # every client; %u = user name, %c = client id

An access word may be ``read``, ``write``, ``readwrite`` (the default when omitted) or ``deny``.
A matching ``deny`` wins over everything; otherwise access needs a matching rule that grants
it; with an ACL file in place, what no rule grants is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..protocol import is_valid_topic_filter, topic_matches

READ = 1
WRITE = 2
_ACCESS = {"read": READ, "write": WRITE, "readwrite": READ | WRITE, "deny": 0}


class AclFileError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Rule:
    topic: str
    access: int  # READ | WRITE bits; 0 = deny


@dataclass(slots=True)
class Acl:
    anonymous: list[Rule] = field(default_factory=list)
    users: dict[str, list[Rule]] = field(default_factory=dict)
    patterns: list[Rule] = field(default_factory=list)

    def rules_for(self, username: str | None, client_id: str) -> list[Rule]:
        rules = list(self.anonymous if username is None else self.users.get(username, ()))
        for pattern in self.patterns:
            topic = _substitute(pattern.topic, username, client_id)
            if topic is not None:
                rules.append(Rule(topic, pattern.access))
        return rules


def _substitute(topic: str, username: str | None, client_id: str) -> str | None:
    # A user name or client id holding a wildcard or a "/" would widen the pattern: such
    # clients get no rule from it (Mosquitto does the same).
    if "%u" in topic:
        if username is None or any(c in username for c in "+#/"):
            return None
        topic = topic.replace("%u", username)
    if "%c" in topic:
        if any(c in client_id for c in "+#/"):
            return None
        topic = topic.replace("%c", client_id)
    return topic


def _decide(rules: list[Rule], applies: Callable[[str], bool], access: int) -> bool:
    """A deny rule that applies wins; otherwise a rule that applies must grant ``access``."""
    granted = False
    for rule in rules:
        if applies(rule.topic):
            if rule.access == 0:
                return False
            if rule.access & access:
                granted = True
    return granted


def check_topic(rules: list[Rule], topic: str, access: int) -> bool:
    """May a client with ``rules`` publish (WRITE) to or receive (READ) ``topic``?"""
    return _decide(rules, lambda rule_topic: topic_matches(rule_topic, topic), access)


def filter_covers(acl_filter: str, sub_filter: str) -> bool:
    """Whether every topic ``sub_filter`` can match is matched by ``acl_filter``."""
    acl_levels = acl_filter.split("/")
    sub_levels = sub_filter.split("/")
    if sub_levels[0][:1] == "$" and acl_levels[0] in ("+", "#"):
        return False  # MQTT-4.7.2-1: a leading wildcard never reaches $ topics
    for index, acl_level in enumerate(acl_levels):
        if acl_level == "#":
            return True
        if index >= len(sub_levels):
            return False
        sub_level = sub_levels[index]
        if sub_level == "#":
            return False
        if acl_level == "+":
            continue
        if sub_level == "+" or sub_level != acl_level:
            return False
    return len(acl_levels) == len(sub_levels)


def check_subscribe(rules: list[Rule], sub_filter: str) -> bool:
    """A subscription needs a read rule covering its whole filter and no deny rule covering
    it; finer denials inside it are applied to each message delivered."""
    return _decide(rules, lambda rule_topic: filter_covers(rule_topic, sub_filter), READ)


def parse_acl(text: str, source: str = "acl") -> Acl:
    acl = Acl()
    current: list[Rule] = acl.anonymous
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        rest = rest.strip()
        where = f"{source}:{number}"
        if keyword == "user":
            if not rest:
                raise AclFileError(f"{where}: 'user' needs a user name")
            current = acl.users.setdefault(rest, [])
        elif keyword in ("topic", "pattern"):
            word, _, topic = rest.partition(" ")
            if word in _ACCESS:
                access, topic = _ACCESS[word], topic.strip()
            else:
                access, topic = READ | WRITE, rest
            if not topic or not is_valid_topic_filter(topic):
                raise AclFileError(f"{where}: invalid topic {topic!r}")
            (current if keyword == "topic" else acl.patterns).append(Rule(topic, access))
        else:
            raise AclFileError(f"{where}: unknown keyword {keyword!r}")
    return acl


def read_acl_file(path: str | Path) -> Acl:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AclFileError(f"{path}: cannot read: {exc}") from None
    return parse_acl(text, str(path))
