"""The packages' shape: no module of ``vae`` pulls in the app's UI libraries or the packages built
on it (``classroom``, ``studio``), ``classroom`` pulls in no UI library, and no two core modules
import each other (directly or round a loop), so each can be read, tested and run from the command
line on its own."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import classroom
import vae

CORE = Path(vae.__file__).parent
MODULES = sorted(m.name for m in pkgutil.iter_modules(vae.__path__))


def top_level_imports_of(package) -> list[str]:
    """The top-level packages loaded by importing every module of ``package``, in a fresh
    interpreter (this one has whatever other tests imported)."""
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__))
    imports = "; ".join(f"import {package.__name__}.{name}" for name in names)
    check = "import sys; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", f"{imports}; {check}"], capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize(("package", "forbidden"), [
    (vae, {"streamlit", "plotly", "classroom", "studio"}),
    (classroom, {"streamlit", "plotly", "studio"}),
])
def test_the_core_and_the_classroom_import_no_layer_above_them(package, forbidden):
    assert set(top_level_imports_of(package)) & forbidden == set()


def vae_imports(path: Path) -> set[str]:
    """The ``vae`` modules that the module at ``path`` imports, at its top or inside a function;
    ``__init__`` for a name taken from the package itself (``from vae import load_checkpoint``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):  # import vae.x; a bare import vae runs the package's __init__
            found |= {(alias.name + ".__init__").split(".")[1] for alias in node.names
                      if alias.name.split(".")[0] == "vae"}
        elif isinstance(node, ast.ImportFrom):
            relative = node.level > 0
            if relative and node.module is None or node.module == "vae":  # from . import x, from vae import x
                found |= {alias.name if alias.name in MODULES else "__init__" for alias in node.names}
            elif relative or node.module.startswith("vae."):  # from .x import y, from vae.x import y
                found.add(node.module.removeprefix("vae.").split(".")[0])
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A loop of modules, each importing the next and the last the first, or None (depth-first search)."""
    done, path = set(), []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return None
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            cycle = visit(imported)
            if cycle:
                return cycle
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module)
        if cycle:
            return cycle
    return None


def test_find_cycle_finds_a_loop_and_only_a_loop():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_core_imports_no_module_round_a_loop():
    graph = {path.stem: vae_imports(path) for path in CORE.glob("*.py")}
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph))
