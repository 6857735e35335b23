"""Guards on the shape of the code: no import cycles, `shared/` free of Blender,
no source file too large to hold in one's head.

Imports are read with `ast` (never executed), including relative imports and
imports inside functions: a lazy import hides a cycle from Python, not from a reader.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Folder -> the package name its modules have (see pyproject.toml's package-dir;
# inside Blender the add-on vendors shared/ as its own `shared` subpackage).
PACKAGES = {"backend": "enliven", "shared": "enliven.shared", "addon": "addon"}
MAX_LINES = 700


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    parts = [PACKAGES[rel.parts[0]], *rel.parts[1:]]
    parts[-1] = parts[-1].removesuffix(".py")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _canonical(name: str) -> str:
    # The add-on's vendored copy of shared/ is the same code as enliven.shared.
    if name == "addon.shared" or name.startswith("addon.shared."):
        return "enliven.shared" + name[len("addon.shared"):]
    return name


def imports_of(source: str, me: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules that module `me` (its `source`) imports anywhere in the file."""
    here = me if is_package else me.rpartition(".")[0]
    found: set[str] = set()

    def add(candidate: str) -> None:
        candidate = _canonical(candidate)
        # `from pkg import name`: name may be a submodule or an attribute of pkg.
        while candidate and candidate not in known:
            candidate = candidate.rpartition(".")[0]
        if candidate and candidate != me:
            found.add(candidate)

    for node in ast.walk(ast.parse(source, me)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = here.split(".")
                base = ".".join(base_parts[: len(base_parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:
                add(f"{base}.{alias.name}")
    return found


def import_graph(*folders: str) -> dict[str, set[str]]:
    files = source_files(*folders)
    known = {module_name(p) for p in files}
    return {module_name(p): imports_of(p.read_text(), module_name(p), p.name == "__init__.py", known)
            for p in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _internal(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Edges to a package's own __init__ are how Python finds its submodules, not a
    dependency on the package's code; the packages here keep their __init__ free of imports."""
    return {m: {t for t in targets if not m.startswith(t + ".")} for m, targets in graph.items()}


def test_the_cycle_finder_sees_a_cycle_hidden_behind_a_lazy_import():
    # The guards below must be able to fail: a function-local, relative import that closes a loop counts.
    known = {"enliven.engines.refine", "enliven.neural.generator", "enliven.shared.protocol"}
    refine = "def f():\n    from ..neural.generator import Generator\n"
    generator = "from ..engines.refine import MASK_NAMES\nfrom ..shared import protocol\n"
    graph = {"enliven.engines.refine": imports_of(refine, "enliven.engines.refine", False, known),
             "enliven.neural.generator": imports_of(generator, "enliven.neural.generator", False, known)}
    assert graph["enliven.neural.generator"] == {"enliven.engines.refine", "enliven.shared.protocol"}
    assert cycles(graph) == [["enliven.engines.refine", "enliven.neural.generator"]]


def test_backend_and_shared_have_no_import_cycles():
    graph = _internal(import_graph("backend", "shared"))
    assert cycles(graph) == []


def test_the_addon_has_no_import_cycles():
    graph = _internal(import_graph("addon", "shared"))
    assert cycles(graph) == []


def test_shared_never_imports_blender():
    for path in source_files("shared"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            assert not any(n == "bpy" or n.startswith(("bpy.", "bpy_extras")) for n in names), \
                f"{path.relative_to(ROOT)} imports Blender's {names}"


def _over_the_limit(*folders: str) -> dict[str, int]:
    return {str(p.relative_to(ROOT)): n for p in source_files(*folders)
            if (n := len(p.read_text().splitlines())) > MAX_LINES}


def test_no_backend_or_shared_source_file_is_over_700_lines():
    assert _over_the_limit("backend", "shared") == {}, f"split these (over {MAX_LINES} lines)"


def test_no_addon_source_file_is_over_700_lines():
    assert _over_the_limit("addon") == {}, f"split these (over {MAX_LINES} lines)"
