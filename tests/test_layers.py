"""The package map of docs/design.md, enforced: no evilm module imports from a higher layer, and no
two modules import each other, directly or round a loop (function-local imports count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "evilm"

# Lowest first; a module may import from its own layer and the ones below (docs/design.md).
LAYERS = [
    ("evilm", "evilm.config", "evilm.stage", "evilm.files", "evilm.processes", "evilm.lazy"),
    ("evilm.data",),
    ("evilm.models",),
    ("evilm.train", "evilm.profiling"),
    ("evilm.tokenizers", "evilm.priors"),
    ("evilm.pretrain",),
    ("evilm.tasks",),
]
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer_of(module: str) -> int:
    best, layer = "", None
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best):
                best, layer = name, index
    if layer is None:
        raise AssertionError(f"{module} is in no layer of LAYERS: add its package to the map (and docs/design.md)")
    return layer


def imports_of(module: str) -> set[str]:
    """The evilm modules ``module`` imports anywhere in its file; a package's ``__init__`` also names
    its lazily imported modules as strings (``evilm.lazy``)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # ``from pkg import submodule`` imports the submodule
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
        elif path.name == "__init__.py" and isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value.partition(":")[0])
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_imports_only_its_own_or_lower_layers():
    # a package's ``__main__`` is a command line, not a library module: nothing imports it, and it may
    # use any layer (as ``experiments`` does)
    wrong = [f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
             for module, targets in GRAPH.items() if not module.endswith(".__main__")
             for target in sorted(targets) if layer_of(target) > layer_of(module)]
    assert not wrong, "imports against the layers of docs/design.md:\n" + "\n".join(wrong)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def test_the_checks_see_a_back_arrow_and_a_cycle():
    assert {"evilm.train.engine", "evilm.train.runtime"} <= GRAPH["evilm.pretrain.loop"]  # function bodies too
    assert "evilm.tokenizers.cache" in GRAPH["evilm.pretrain.stage"]  # a function-local import
    assert "evilm.models.config" in GRAPH["evilm.models"]  # a lazy re-export
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("evilm.tasks.qa") > layer_of("evilm.pretrain.config") > layer_of("evilm.train.engine")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_source_files_stay_under_500_lines(module):
    path = MODULES[module]
    lines = len(path.read_text().splitlines())
    relative = path.relative_to(ROOT).as_posix()
    assert lines <= MAX_LINES, f"{relative}: {lines} lines (at most {MAX_LINES}): split it by job"
