"""The subscription trie: one level per node, children hashed by level.

A PUBLISH is matched by walking the topic's levels once, trying at each node the literal child,
then ``+``, then ``#`` (the order Mosquitto uses); the cost depends on the depth of the topic and
on the wildcards that exist, never on the number of subscriptions or clients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..protocol import topic_matches

if TYPE_CHECKING:
    from ._session import Session


class Subscription:
    """One session's subscription to one filter, with its MQTT 5 options."""

    __slots__ = ("group", "identifier", "match_filter", "no_local", "qos",
                 "retain_as_published", "retain_handling", "session", "topic_filter")

    def __init__(self, session: Session, topic_filter: str, qos: int, *, no_local: bool = False,
                 retain_as_published: bool = False, retain_handling: int = 0,
                 identifier: int | None = None, group: str | None = None,
                 match_filter: str | None = None) -> None:
        self.session = session
        self.topic_filter = topic_filter  # as the client sent it, $share/... included
        # Where it is filed in the trie: the filter without "$share/group/".
        self.match_filter = topic_filter if match_filter is None else match_filter
        self.qos = qos
        self.no_local = no_local
        self.retain_as_published = retain_as_published
        self.retain_handling = retain_handling
        self.identifier = identifier
        self.group = group  # share name of a shared subscription


class SharedGroup:
    """The members of one ``$share/group/filter``; each message goes to one of them."""

    __slots__ = ("members", "turn")

    def __init__(self) -> None:
        self.members: dict[str, Subscription] = {}
        self.turn = 0

    def pick(self) -> Subscription | None:
        """Round robin over the members, preferring one that is connected now."""
        members = list(self.members.values())
        if not members:
            return None
        count = len(members)
        for step in range(count):
            sub = members[(self.turn + step) % count]
            if sub.session.connection is not None:
                self.turn = (self.turn + step + 1) % count
                return sub
        sub = members[self.turn % count]
        self.turn = (self.turn + 1) % count
        return sub


class Node:
    """One level of the trie: the subscriptions to the filter that ends here, the shared
    groups of that filter, the next levels."""

    __slots__ = ("children", "shared", "subs")

    def __init__(self) -> None:
        # Each made on first use: most nodes hold one kind of thing (a leaf no children, a
        # level on the way no subscriptions, nearly all no shared groups), and an empty dict
        # costs 64 bytes. A filter of one subscriber (most are: a device's own topics) holds
        # it alone: a dict of one entry costs 220 bytes, more than the subscription itself.
        # So is a node's one child (a device's own level, then a fixed one): (level, node).
        # A dict here always holds two or more: one left goes back to being held alone.
        self.children: dict[str, Node] | tuple[str, Node] | None = None
        self.subs: dict[str, Subscription] | Subscription | None = None  # by client id
        self.shared: dict[str, SharedGroup] | None = None  # share name -> group

    def has_subscribers(self) -> bool:
        return self.subs is not None

    def subscribers(self) -> list[Subscription]:
        subs = self.subs
        if subs is None:
            return []
        return [subs] if isinstance(subs, Subscription) else list(subs.values())

    def is_empty(self) -> bool:
        return not (self.children or self.has_subscribers() or self.shared)

    def child(self, level: str) -> Node | None:
        children = self.children
        if children is None:
            return None
        if isinstance(children, tuple):
            return children[1] if children[0] == level else None
        return children.get(level)

    def child_items(self) -> list[tuple[str, Node]]:
        children = self.children
        if children is None:
            return []
        return [children] if isinstance(children, tuple) else list(children.items())

    def child_made(self, level: str) -> Node:
        """The child for ``level``, made if there is none."""
        children = self.children
        if children is None:
            child = Node()
            self.children = (level, child)
        elif isinstance(children, tuple):
            if children[0] == level:
                return children[1]
            child = Node()
            self.children = {children[0]: children[1], level: child}
        else:
            found = children.get(level)
            if found is not None:
                return found
            child = children[level] = Node()
        return child

    def drop_child(self, level: str) -> None:
        children = self.children
        if isinstance(children, tuple):
            if children[0] == level:
                self.children = None
        elif children is not None:
            children.pop(level, None)
            if len(children) == 1:
                self.children = next(iter(children.items()))  # alone again: no dict

    def take(self, found: list[Node], groups: list[SharedGroup]) -> None:
        """Add this node to a match: it, if it has subscribers, and its shared groups."""
        if self.subs is not None:
            found.append(self)
        if self.shared:
            groups.extend(self.shared.values())


# Topics whose match result is remembered: sensors publish on the same topics again and again,
# and a hit skips the walk entirely. A result holds the matching nodes (read for their
# subscribers when a message is delivered) and groups, which subscriptions change in place,
# so it stays true until a filter gets its first subscription (a node, or a group, no result
# holds yet): then only the topics that filter matches are forgotten. Recency without
# bookkeeping on a hit: results live in two generations of at most half the size each; a hit
# in the older one moves the result to the newer, and when the newer is full the older (what
# was not used since) is dropped.
MATCH_CACHE_SIZE = 10_000
GENERATION = MATCH_CACHE_SIZE // 2

Match = tuple[list[Node], list[SharedGroup]]
Interest = Callable[[str, str | None], None]  # (filter, share name or None)


class Router:
    def __init__(self) -> None:
        self._root = Node()
        self.count = 0
        self.shared_count = 0  # of those, members of shared subscription groups
        self._cache: dict[str, Match] = {}  # the newer generation of results
        self._older: dict[str, Match] = {}
        # Told when a filter (or a shared group of one) gets its first subscription and loses
        # its last (a cluster announces its interest with them); None: nobody asks.
        self._interest: tuple[Interest, Interest] | None = None

    def watch_filters(self, added: Interest, removed: Interest) -> list[tuple[str, str | None]]:
        """From now on, ``added(filter, group)`` and ``removed(filter, group)`` follow which
        filters have ordinary subscriptions (group None) and which shared groups have members;
        those there are now."""
        self._interest = (added, removed)
        found: list[tuple[str, str | None]] = []
        stack: list[tuple[Node, str]] = [(child, level)
                                          for level, child in self._root.child_items()]
        while stack:
            node, path = stack.pop()
            if node.has_subscribers():
                found.append((path, None))
            found += [(path, group) for group in node.shared or ()]
            stack += [(child, path + "/" + level) for level, child in node.child_items()]
        return found

    def shared_group(self, topic_filter: str, group: str) -> SharedGroup | None:
        """The members of ``$share/group/topic_filter``, if any."""
        node = self._root
        for level in topic_filter.split("/"):
            child = node.child(level)
            if child is None:
                return None
            node = child
        return node.shared.get(group) if node.shared else None

    def add(self, sub: Subscription) -> bool:
        """Add or replace a subscription, filed under its ``match_filter``.

        Returns whether the session already had this subscription (MQTT-3.8.4-3: replaced).
        """
        node = self._root
        for level in sub.match_filter.split("/"):
            node = node.child_made(level)
        client_id = sub.session.client_id
        first = (not node.has_subscribers() if sub.group is None
                 else sub.group not in (node.shared or ()))
        if first:
            self._forget(sub.match_filter)  # no cached result holds this node yet
            if self._interest is not None:
                self._interest[0](sub.match_filter, sub.group)
        if sub.group is None:
            subs = node.subs
            if subs is None:
                node.subs, existed = sub, False
            elif isinstance(subs, Subscription):
                existed = subs.session.client_id == client_id
                node.subs = sub if existed else {subs.session.client_id: subs, client_id: sub}
            else:
                existed = client_id in subs
                subs[client_id] = sub
        else:
            shared = node.shared
            if shared is None:
                shared = node.shared = {}
            group = shared.get(sub.group)
            if group is None:
                group = shared[sub.group] = SharedGroup()
            existed = client_id in group.members
            group.members[client_id] = sub
        if not existed:
            self.count += 1
            if sub.group is not None:
                self.shared_count += 1
        return existed

    def remove(self, sub: Subscription) -> bool:
        # Cached results need no change: the subscription leaves the node (or group) they
        # hold; an emptied one matches nobody, and a new one for that filter is a first.
        client_id, topic_filter, group = sub.session.client_id, sub.match_filter, sub.group
        path = [self._root]
        for level in topic_filter.split("/"):
            child = path[-1].child(level)
            if child is None:
                return False
            path.append(child)
        node = path[-1]
        subs, shared = node.subs, node.shared
        if group is None:
            if isinstance(subs, Subscription):
                removed = subs.session.client_id == client_id
                if removed:
                    node.subs = None
            elif subs is not None:
                removed = subs.pop(client_id, None) is not None
                if len(subs) == 1:
                    node.subs = next(iter(subs.values()))  # alone again: no dict
            else:
                removed = False
        else:
            members = shared.get(group) if shared else None
            removed = members is not None and members.members.pop(client_id, None) is not None
            if shared is not None and members is not None and not members.members:
                del shared[group]
        if removed:
            self.count -= 1
            if group is not None:
                self.shared_count -= 1
            if self._interest is not None and (
                    not node.has_subscribers() if group is None
                    else group not in (shared or ())):
                self._interest[1](topic_filter, group)
        # Prune the branch back up to the first node that still holds something.
        levels = topic_filter.split("/")
        for depth in range(len(levels), 0, -1):
            if not path[depth].is_empty():
                break
            path[depth - 1].drop_child(levels[depth - 1])
        return removed

    def match(self, topic: str) -> Match:
        """The nodes whose subscriptions match ``topic``, and its matching shared groups.

        The lists are shared with later calls: read them, never change them; a node's
        ``subs`` are read when delivering (they may have changed since).
        """
        cached = self._cache.get(topic)
        if cached is not None:
            return cached
        cached = self._older.pop(topic, None)
        if cached is None:
            cached = self._walk(topic)
        cache = self._cache
        if len(cache) >= GENERATION:
            self._older = cache
            cache = self._cache = {}
        cache[topic] = cached
        return cached

    def _forget(self, topic_filter: str) -> None:
        """Forget the cached results of the topics ``topic_filter`` matches."""
        for cache in (self._cache, self._older):
            if not cache:
                continue
            if "+" not in topic_filter and "#" not in topic_filter:
                cache.pop(topic_filter, None)
                continue
            # The literal levels before the first wildcard narrow the search at string speed.
            cut = min(i for i in (topic_filter.find("+"), topic_filter.find("#")) if i >= 0)
            prefix = topic_filter[:cut]
            parent = prefix[:-1]  # "a/#" matches "a" as well (MQTT 4.7.1.2)
            for topic in [t for t in cache if t.startswith(prefix) or t == parent]:
                if topic_matches(topic_filter, topic):
                    del cache[topic]

    def _walk(self, topic: str) -> Match:
        found: list[Node] = []
        groups: list[SharedGroup] = []
        nodes = [self._root]
        levels = topic.split("/")
        # MQTT-4.7.2-1: a filter starting with a wildcard does not match a topic starting
        # with "$", so at the first level only the literal child is tried for such topics.
        wild = not topic.startswith("$")
        for level in levels:
            following: list[Node] = []
            for node in nodes:
                children = node.children
                if children is None:
                    continue
                if isinstance(children, tuple):
                    # A topic has no "+" or "#" of its own (MQTT-3.3.2-2): one test each.
                    only_level, only = children
                    if only_level == level or (wild and only_level == "+"):
                        following.append(only)
                    elif wild and only_level == "#":
                        only.take(found, groups)
                    continue
                child = children.get(level)
                if child is not None:
                    following.append(child)
                if wild:
                    child = children.get("+")
                    if child is not None:
                        following.append(child)
                    child = children.get("#")
                    if child is not None:
                        child.take(found, groups)
            wild = True
            nodes = following
            if not nodes:
                return found, groups
        for node in nodes:
            node.take(found, groups)
            # "a/#" also matches "a" itself (MQTT 4.7.1.2).
            child = node.child("#")
            if child is not None:
                child.take(found, groups)
        return found, groups
