"""The backend seam holds: code above the backends never tests a URL scheme, a concrete
queue or backend class, or a backend's private client (DESIGN.md, "The backend seam").

An AST scan of every module outside ``swarm_runtime/backends/`` and ``swarm_runtime/queue/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import swarm_runtime

PACKAGE = Path(swarm_runtime.__file__).parent
BELOW_THE_SEAM = ("backends", "queue")
SCHEMES = {"memory", "file", "redis", "rediss"}
#: concrete classes; isinstance on the bases (MessageQueue, Backend) is fine
CONCRETE = {
    "MemoryQueue",
    "FileQueue",
    "FileQueueCore",
    "RedisQueue",
    "MemoryBackend",
    "FileBackend",
    "RedisBackend",
}
#: attributes only a backend may read (private clients, a backend's own layout)
PRIVATE = {"_client", "_redis", "scheme", "directory", "prefix"}


def _is_scheme(node: ast.AST) -> bool:
    if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
        return False
    value = node.value.lower()
    return value in SCHEMES or any(value.startswith(f"{s}:") for s in SCHEMES)


def _names(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Tuple):
        return set().union(*(_names(item) for item in node.elts))
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Attribute):
        return {node.attr}
    return set()


def leaks(source: str) -> list[tuple[int, str]]:
    """``(line, what)`` for every seam leak in ``source``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for operand in operands:
                if _is_scheme(operand):
                    found.append((node.lineno, f"compares with {operand.value!r}"))  # type: ignore[attr-defined]
                if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) and any(
                    _is_scheme(item) for item in operand.elts
                ):
                    found.append((node.lineno, "compares with a tuple of schemes"))
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in ("isinstance", "issubclass"):
                hit = _names(node.args[1]) & CONCRETE if len(node.args) == 2 else set()
                if hit:
                    found.append((node.lineno, f"{func.id} on {', '.join(sorted(hit))}"))
            probe = node.args[1] if len(node.args) >= 2 else None
            if (
                isinstance(func, ast.Name)
                and func.id in ("getattr", "hasattr")
                and isinstance(probe, ast.Constant)
                and probe.value in PRIVATE
            ):
                found.append((node.lineno, f"{func.id}(..., {probe.value!r})"))
            if (
                isinstance(func, ast.Attribute)
                and func.attr in ("startswith", "endswith")
                and any(_is_scheme(arg) for arg in node.args)
            ):
                found.append((node.lineno, f"{func.attr} with a scheme"))
        elif isinstance(node, ast.Attribute) and node.attr in PRIVATE:
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                found.append((node.lineno, f"reads .{node.attr} of another object"))
    return found


def _modules() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] not in BELOW_THE_SEAM
    )


def test_the_scan_sees_every_kind_of_leak() -> None:
    """The scanner itself flags each pattern (so the seam test below can fail)."""
    bad = """
if queue.scheme == "redis": pass
if url.startswith("redis://"): pass
if kind in ("file", "memory"): pass
ok = isinstance(q, MemoryQueue) or isinstance(q, (int, queue.redis.RedisQueue))
client = queue._client
where = getattr(queue, "directory", None)
"""
    kinds = [what for _line, what in leaks(bad)]
    assert any("'redis'" in k for k in kinds)
    assert any("startswith" in k for k in kinds)
    assert any("tuple of schemes" in k for k in kinds)
    assert any("MemoryQueue" in k for k in kinds)
    assert any("RedisQueue" in k for k in kinds)
    assert any("._client" in k for k in kinds)
    assert any("'directory'" in k for k in kinds)
    assert leaks("if self.prefix and isinstance(q, MessageQueue): x = self._client") == []


def test_scan_covers_the_package() -> None:
    modules = {str(p.relative_to(PACKAGE)) for p in _modules()}
    assert "orchestrator/workflow.py" in modules
    assert "runtime/runtime.py" in modules
    assert not any(m.startswith(("backends/", "queue/")) for m in modules)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_backend_knowledge_above_the_backends(path: Path) -> None:
    """No scheme string, concrete backend/queue isinstance or private client access."""
    assert leaks(path.read_text(encoding="utf-8")) == []
