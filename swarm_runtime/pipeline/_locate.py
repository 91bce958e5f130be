"""Find where given field paths were written in YAML text, for error messages only.

The fast load keeps no positions; when a file has problems, :func:`locate_paths` finds
them. An item of a top-level block list (``tasks[41234]``) is cut out of the text by
counting item lines, and kept only if it parses to the very data loaded for it; anything
else is found by reading the text again as a stream of PyYAML (libyaml) events,
following only the branches that lead to the wanted paths, stopping once all are found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from ..agents.builtin._validation import join_path

__all__ = ["locate_paths"]

_Parser: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _ancestors(path: str) -> Iterable[str]:
    probe = path
    while True:
        yield probe
        if not probe:
            return
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[: max(cut, 0)]


class _Frame:
    __slots__ = ("index", "is_map", "key", "key_mark", "path")

    def __init__(self, path: str, is_map: bool) -> None:
        self.path = path
        self.is_map = is_map
        self.index = 0
        self.key: str | None = None  # a mapping's key waiting for its value
        self.key_mark: tuple[int, int] = (0, 0)


def _mark(event: yaml.Event) -> tuple[int, int]:
    mark = event.start_mark
    return (0, 0) if mark is None else (mark.line + 1, mark.column + 1)


_ITEM_PATH = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\[(\d+)\](.*)")
_TOP_LEVEL_LINE = re.compile(r"\n[^\s#-]")


def locate_paths(text: str, paths: Iterable[str], data: Any = None) -> dict[str, tuple[int, int]]:
    """``path → (line, column)`` for the wanted paths and their ancestors that exist.

    A scalar is placed at its value, a collection at its key (or its first character in
    a sequence), as the full parse does. ``data`` (what the text was loaded to) lets
    items of top-level lists be found without reading the whole text again.
    """
    rest: list[str] = []
    found: dict[str, tuple[int, int]] = {}
    for path in paths:
        placed = _in_item(text, path, data) if isinstance(data, Mapping) else None
        if placed:
            for key, where in placed.items():
                found.setdefault(key, where)
        else:
            rest.append(path)
    if rest:
        for key, where in _by_events(text, rest).items():
            found.setdefault(key, where)
    return found


def _in_item(text: str, path: str, data: Mapping[str, Any]) -> dict[str, tuple[int, int]] | None:
    """Positions of ``KEY[i]...`` found in item ``i`` of the block list under top-level
    ``KEY``, cut out of the text; None when that cannot be done safely."""
    match = _ITEM_PATH.fullmatch(path)
    if match is None:
        return None
    key, index, tail = match.group(1), int(match.group(2)), match.group(3)
    items = data.get(key)
    if not isinstance(items, list) or index >= len(items):
        return None
    head = f"{key}:"
    at = 0 if text.startswith(head) else text.find("\n" + head) + 1
    if at <= 0 and not text.startswith(head):
        return None
    line_end = text.find("\n", at)
    if line_end < 0 or text[at + len(head) : line_end].strip():
        return None  # a flow list (or nothing) on the key's own line
    first = re.compile(r"\n( *)- ").match(text, line_end)
    if first is None:
        return None
    marker = "\n" + first.group(1) + "- "
    start = line_end
    for _ in range(index):
        start = text.find(marker, start + 1)
        if start < 0:
            return None
    after = text.find(marker, start + 1)
    top = _TOP_LEVEL_LINE.search(text, start + 1)
    ends = [e for e in (after, top.start() if top else -1) if e >= 0]
    chunk = text[start + 1 : min(ends) if ends else len(text)]
    try:
        if yaml.load(chunk, Loader=_Parser) != [items[index]]:
            return None
    except yaml.YAMLError:
        return None
    offset = text.count("\n", 0, start + 1)
    local = _by_events(chunk, ["[0]" + tail])
    return {
        f"{key}[{index}]{sub[3:]}": (line + offset, column)
        for sub, (line, column) in local.items()
        if sub.startswith("[0]")
    }


def _by_events(text: str, paths: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Positions found by following PyYAML events; unparseable text gives what was
    found before the problem."""
    wanted: set[str] = set()
    for path in paths:
        wanted.update(_ancestors(path))
    found: dict[str, tuple[int, int]] = {}
    stack: list[_Frame] = []
    skip = 0  # depth inside a branch that leads to no wanted path
    try:
        for event in yaml.parse(text, Loader=_Parser):
            if skip:
                if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                    skip += 1
                elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                    skip -= 1
                    if not skip:
                        _after_value(stack)
                continue
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                stack.pop()
                _after_value(stack)
                continue
            if not isinstance(event, yaml.NodeEvent):
                continue
            frame = stack[-1] if stack else None
            if frame is not None and frame.is_map and frame.key is None:
                if isinstance(event, yaml.ScalarEvent):  # a key
                    frame.key, frame.key_mark = str(event.value), _mark(event)
                    continue
                frame.key, frame.key_mark = "\0", _mark(event)  # a complex key: never wanted
            if frame is None:
                path, where = "", _mark(event)
            elif frame.is_map:
                path = join_path(frame.path, frame.key or "")
                where = _mark(event) if isinstance(event, yaml.ScalarEvent) else frame.key_mark
            else:
                path, where = join_path(frame.path, frame.index), _mark(event)
            is_collection = isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent))
            if path in wanted:
                found.setdefault(path, where)
                if len(found) == len(wanted):
                    break
                if is_collection:
                    stack.append(_Frame(path, isinstance(event, yaml.MappingStartEvent)))
                    continue
            elif is_collection:
                skip = 1
                continue
            _after_value(stack)
    except yaml.YAMLError:
        pass
    return found


def _after_value(stack: list[_Frame]) -> None:
    """The current frame's value is done: the next node is a key, or the next item."""
    if stack:
        frame = stack[-1]
        if frame.is_map:
            frame.key = None
        else:
            frame.index += 1
