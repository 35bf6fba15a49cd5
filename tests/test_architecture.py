"""The package's shape, checked on the source tree with ``ast`` (nothing is imported or run).

* imports point one way: no cycle anywhere in ``src/reviewsense`` (function-level imports
  count; ``if TYPE_CHECKING:`` imports do not, they never run);
* the service never imports training code;
* no module over 500 lines, no function over 80 lines (unless its ``def`` line carries
  ``# long: <reason>``).

``KNOWN`` is where a unit being split would be listed while the work is in progress; it is
empty: the test is strict.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "reviewsense"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80

# What the service must not import (directly): training, sweeps, evaluation, data cutting.
TRAINING_CODE = (
    "reviewsense.train",
    "reviewsense.train_selection",
    "reviewsense.train_report",
    "reviewsense.trainer_utils",
    "reviewsense.checkpoints",
    "reviewsense.pretrain",
    "reviewsense.distill",
    "reviewsense.sweep",
    "reviewsense.evaluate",
    "reviewsense.data.splits",
)

# "path relative to src/reviewsense[:function]" -> why it is tolerated for now.
# Empty: the splits of sweep.py, analysis/diagnose.py, service/ and pretrain.py have landed.
KNOWN: dict[str, str] = {}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _resolve(name: str, module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` refers to."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    keep = len(base) - node.level + (1 if path.name == "__init__.py" else 0)
    return ".".join(base[:keep] + ([node.module] if node.module else []))


def imports_of(module: str) -> set[str]:
    """The package modules ``module`` imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    path = MODULES[module]
    deps: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            deps.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, module, path, node)
            for a in node.names:
                sub = f"{target}.{a.name}"
                deps.add(sub if sub in MODULES else target)
    return {d for d in deps if d in MODULES and d != module}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles found by depth-first search (each as a closed path)."""
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(u: str, stack: list[str]) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                cycles.append(stack[stack.index(v) :] + [v])
            elif v not in state:
                visit(v, stack)
        stack.pop()
        state[u] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    return cycles


def size_problems() -> dict[str, str]:
    """``"file"`` or ``"file:function"`` -> what is too long."""
    out = {}
    for path in MODULES.values():
        rel = str(path.relative_to(PKG))
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        if len(lines) > MAX_MODULE_LINES:
            out[rel] = f"{len(lines)} lines"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES and "# long:" not in lines[node.lineno - 1]:
                    out[f"{rel}:{node.name}"] = f"{n} lines (line {node.lineno})"
    return out


def test_the_checker_sees_cycles_and_package_imports():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
    assert "reviewsense.data.tables" in imports_of("reviewsense.data.rows")
    assert "reviewsense.rundir" in imports_of("reviewsense.train")  # `from reviewsense import x`


def test_no_import_cycle():
    graph = {m: imports_of(m) for m in MODULES}
    cycles = [" -> ".join(c) for c in find_cycles(graph)]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_service_never_imports_training_code():
    bad = {
        m: sorted(d for d in imports_of(m) if d.startswith(TRAINING_CODE))
        for m in MODULES
        if m.startswith("reviewsense.service")
    }
    bad = {m: d for m, d in bad.items() if d}
    assert not bad, f"the service imports training code: {bad}"


def test_modules_and_functions_are_small():
    problems = {k: v for k, v in size_problems().items() if k not in KNOWN}
    assert not problems, (
        f"over {MAX_MODULE_LINES} lines per module / {MAX_FUNCTION_LINES} per function "
        f"(split it, or justify with `# long: <reason>` on the def line): {problems}"
    )
