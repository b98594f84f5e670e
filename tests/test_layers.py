"""The layers hold: `lint-imports` keeps pyproject's contracts, and no module of `core` or `tui` is in an
import cycle (function-level imports count: grimp reads every import statement).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=os.environ | {"PYTHONPATH": str(ROOT)})


def import_cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle of a module graph (module → modules it imports), one per strongly connected
    component, as a path that starts and ends at the same module. Iterative Tarjan: no recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in sorted(imports):
        if root in index:
            continue
        work = [(root, iter(sorted(imports.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(imports.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1 or node in imports.get(node, ()):
                    components.append(component)
    return [_cycle_through(c, imports) for c in components]


def _cycle_through(component: set[str], imports: dict[str, set[str]]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside the component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(imports.get(node, ())):
                if child == start:
                    return paths[node] + [start]
                if child in component and child not in paths:
                    paths[child] = paths[node] + [child]
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover - a component always has one


def module_graph(*packages: str) -> dict[str, set[str]]:
    graph = grimp.build_graph(*packages, cache_dir=None)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


# ---- the contracts ---------------------------------------------------------------------------------

def test_lint_imports_keeps_every_contract():
    out = lint_imports()
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_lint_imports_fails_on_a_broken_contract(tmp_path):
    """The check above can fail: a contract the code breaks (jobs import the project) is reported."""
    (tmp_path / "setup.cfg").write_text(
        "[importlinter]\nroot_packages =\n    core\n\n"
        "[importlinter:contract:broken]\nname = jobs never import the project\ntype = forbidden\n"
        "source_modules =\n    core.jobs\nforbidden_modules =\n    core.project\n")
    out = lint_imports("--config", str(tmp_path / "setup.cfg"), cwd=tmp_path)
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    assert "jobs never import the project BROKEN" in out.stdout


def test_every_core_package_is_placed_by_the_contracts():
    """A new package under core/ must take its place in the layers (and be off-limits to jaxmodels)."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    layered = {name.strip() for layer in layers for name in layer.split("|")}
    jax_forbidden = set(next(c for c in contracts if c.get("source_modules") == ["core.jaxmodels"])
                        ["forbidden_modules"])
    packages = {f"core.{p.name}" for p in (ROOT / "core").iterdir() if (p / "__init__.py").is_file()}
    packages |= {"core.errors"}
    assert packages - {"core.jaxmodels"} == layered
    assert jax_forbidden == layered


# ---- import cycles ---------------------------------------------------------------------------------

def test_no_import_cycle_in_core_or_tui():
    cycles = import_cycles(module_graph("core", "tui"))
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_cycles():
    dag = {"a": {"b", "c"}, "b": {"c"}, "c": set()}
    assert import_cycles(dag) == []
    assert import_cycles({**dag, "c": {"a"}}) == [["a", "c", "a"]]  # the shortest way round
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert import_cycles({"a": {"a"}}) == [["a", "a"]]
    two = import_cycles({"a": {"b"}, "b": {"a"}, "x": {"y"}, "y": {"z"}, "z": {"x"}})
    assert sorted(two) == [["a", "b", "a"], ["x", "y", "z", "x"]]


def test_a_function_level_import_cycle_is_found(tmp_path, monkeypatch):
    """Through grimp, on a package made for it: an import hidden in a function closes a cycle too."""
    pkg = tmp_path / "cyclic"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "record.py").write_text("from cyclic import control\n")
    (pkg / "control.py").write_text("def run():\n    from cyclic.record import X\n    return X\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles(module_graph("cyclic")) == [["cyclic.control", "cyclic.record", "cyclic.control"]]
