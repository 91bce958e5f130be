"""Read YAML text keeping where every value was written (line, column) for error messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from ..agents.builtin._validation import format_path
from ..errors import ConfigProblem

__all__ = ["MAX_NESTING", "YamlDocument", "YamlSyntaxError", "locate", "parse_yaml", "too_deep"]

#: deepest nesting of mappings and lists accepted in a pipeline file (and in params):
#: far more than any real pipeline needs, far less than what breaks JSON encoders
MAX_NESTING = 64

_MERGE_TAG = "tag:yaml.org,2002:merge"
#: libyaml's loader when PyYAML was built with it (about 10x faster), else the pure-Python one
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlSyntaxError(Exception):
    """Internal: the text is not YAML; carries the problem to report."""

    def __init__(self, problem: ConfigProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass
class YamlDocument:
    """The parsed data, a ``path → (line, column)`` map, and duplicate-key problems."""

    data: Any
    marks: dict[str, tuple[int, int]] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)


def _mark_of(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


def _walk(root: yaml.Node, doc: YamlDocument) -> None:
    """Record marks of every value, and report keys given twice in one mapping."""
    stack: list[tuple[yaml.Node, tuple[str | int, ...], tuple[int, int]]] = [
        (root, (), _mark_of(root.start_mark))
    ]
    seen_nodes: set[int] = set()
    while stack:
        node, parts, mark = stack.pop()
        doc.marks.setdefault(format_path(parts), mark)
        if id(node) in seen_nodes:  # an alias: already walked (and maybe recursive)
            continue
        seen_nodes.add(id(node))
        if len(parts) >= MAX_NESTING and isinstance(node, yaml.CollectionNode):
            doc.problems.append(too_deep(format_path(parts), *mark))
            continue
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = str(key_node.value)
                key_mark = _mark_of(key_node.start_mark)
                if key in first_line:
                    doc.problems.append(
                        ConfigProblem(
                            format_path((*parts, key)),
                            f"key given twice in one mapping (first on line {first_line[key]}); "
                            "YAML would silently keep only the last",
                            kind="duplicate",
                            line=key_mark[0],
                            column=key_mark[1],
                        )
                    )
                    continue
                first_line[key] = key_mark[0]
                scalar = isinstance(value_node, yaml.ScalarNode)
                value_mark = _mark_of(value_node.start_mark) if scalar else key_mark
                stack.append((value_node, (*parts, key), value_mark))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                stack.append((item, (*parts, index), _mark_of(item.start_mark)))


def too_deep(path: str, line: int | None = None, column: int | None = None) -> ConfigProblem:
    """The problem of a value nested deeper than :data:`MAX_NESTING` levels."""
    return ConfigProblem(
        path, f"nested more than {MAX_NESTING} levels deep; flatten it", "too_deep", line, column
    )


def _reader_problem(text: str, exc: yaml.reader.ReaderError) -> ConfigProblem:
    found = yaml.reader.Reader.NON_PRINTABLE.search(text)
    position = found.start() if found else min(exc.position, len(text))
    before = text[:position]
    line = before.count("\n") + 1
    column = position - (before.rfind("\n") + 1) + 1
    what = f"U+{ord(found.group()):04X}" if found else "a character"
    return ConfigProblem(
        "", f"YAML syntax error: {what} is not allowed in YAML text", "syntax", line, column
    )


def parse_yaml(text: str) -> YamlDocument:
    """Parse one YAML document safely; :class:`YamlSyntaxError` gives line and column."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        raise YamlSyntaxError(_reader_problem(text, exc)) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return YamlDocument(data=None)
        doc = YamlDocument(data=None)
        _walk(root, doc)
        doc.data = loader.construct_document(root)
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or "invalid YAML"
        if exc.context:
            what = f"{exc.context}, {what}"
        line, column = _mark_of(mark) if mark is not None else (None, None)
        raise YamlSyntaxError(
            ConfigProblem("", f"YAML syntax error: {what}", "syntax", line, column)
        ) from None
    except yaml.reader.ReaderError as exc:
        raise YamlSyntaxError(_reader_problem(text, exc)) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(ConfigProblem("", f"YAML error: {exc}", "syntax")) from None
    except RecursionError:
        raise YamlSyntaxError(
            ConfigProblem("", "YAML nests too deeply to be a pipeline", "syntax")
        ) from None
    finally:
        loader.dispose()


def locate(marks: dict[str, tuple[int, int]], path: str) -> tuple[int | None, int | None]:
    """Line and column of ``path``, or of its nearest ancestor that was written."""
    probe = path
    while True:
        if probe in marks:
            return marks[probe]
        if not probe:
            return (None, None)
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[: max(cut, 0)]
