"""Retained messages, in a tree of topic levels of their own.

A SUBSCRIBE walks its filter down this tree: a literal level follows one child, ``+`` every
child, ``#`` the whole subtree. Topics starting with ``$`` are skipped by a leading wildcard
(MQTT-4.7.2-1).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._message import Message


class _Node:
    __slots__ = ("children", "message")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.message: Message | None = None


class RetainedStore:
    def __init__(self) -> None:
        self._root = _Node()
        self.count = 0
        self.bytes = 0  # payload bytes, all retained messages together

    def set(self, message: Message) -> None:
        """Store, replace or (empty payload) delete the retained message of a topic.

        MQTT-3.3.1-5, MQTT-3.3.1-6, MQTT-3.3.1-7.
        """
        levels = message.topic.split("/")
        if not message.payload:
            self._delete(levels)
            return
        node = self._root
        for level in levels:
            child = node.children.get(level)
            if child is None:
                child = node.children[level] = _Node()
            node = child
        if node.message is None:
            self.count += 1
        else:
            self.bytes -= len(node.message.payload)
        self.bytes += len(message.payload)
        node.message = message.kept()

    def _delete(self, levels: list[str]) -> None:
        path = [self._root]
        for level in levels:
            child = path[-1].children.get(level)
            if child is None:
                return
            path.append(child)
        if path[-1].message is None:
            return
        self.bytes -= len(path[-1].message.payload)
        path[-1].message = None
        self.count -= 1
        for depth in range(len(levels), 0, -1):
            node = path[depth]
            if node.children or node.message is not None:
                break
            del path[depth - 1].children[levels[depth - 1]]

    def get(self, topic: str) -> Message | None:
        node = self._root
        for level in topic.split("/"):
            child = node.children.get(level)
            if child is None:
                return None
            node = child
        return node.message

    def match(self, topic_filter: str) -> Iterator[Message]:
        """The retained messages whose topic matches ``topic_filter``."""
        return self._walk(self._root, topic_filter.split("/"), 0)

    def _walk(self, node: _Node, levels: list[str], index: int) -> Iterator[Message]:
        if index == len(levels):
            if node.message is not None:
                yield node.message
            return
        level = levels[index]
        if level == "#":
            # "a/#" matches "a" too (MQTT 4.7.1.2); not "$..." topics from the top.
            if node.message is not None and index > 0:
                yield node.message
            yield from self._subtree(node, skip_dollar=index == 0)
        elif level == "+":
            # A copy: the walk goes on across the event loop's turns (see
            # Session.stream_retained), while retained messages come and go.
            for name, child in list(node.children.items()):
                if index == 0 and name.startswith("$"):
                    continue
                yield from self._walk(child, levels, index + 1)
        else:
            literal = node.children.get(level)
            if literal is not None:
                yield from self._walk(literal, levels, index + 1)

    def _subtree(self, node: _Node, skip_dollar: bool) -> Iterator[Message]:
        stack = [child for name, child in node.children.items()
                 if not (skip_dollar and name.startswith("$"))]
        while stack:
            current = stack.pop()
            if current.message is not None:
                yield current.message
            stack.extend(current.children.values())
