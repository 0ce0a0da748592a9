"""No import cycles between the modules of django_sendflare.

The graph is built from the source with ``ast``: every ``import`` and ``from ... import``
statement of a module is an edge, those inside functions and methods included (an import moved
into a function still ties the two modules together; it only hides the cycle until the first
call). Imports under ``if TYPE_CHECKING:`` are left out: they never run.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import django_sendflare

PACKAGE = "django_sendflare"
ROOT = Path(django_sendflare.__file__).parent


@functools.cache
def module_files() -> dict[str, Path]:
    """Every module of the package, by dotted name (``pkg.sub`` for ``pkg/sub/__init__.py``)."""
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", None)
    return name == "TYPE_CHECKING"


def _takes_names(package: str, node: ast.ImportFrom) -> bool:
    """Whether ``from package import ...`` takes a name other than a submodule."""
    files = module_files()
    return any(f"{package}.{alias.name}" not in files for alias in node.names)


def imported_names(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """The absolute names a module's import statements import (candidates, not yet modules)."""
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            names.update(f"{origin}.{alias.name}" for alias in node.names)
            # "from pkg import sub" runs pkg/__init__.py first, unless pkg is a package of the
            # importing module itself (then it is already under way, whatever is imported).
            if not f"{module}.".startswith(f"{origin}.") or _takes_names(origin, node):
                names.add(origin)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    files = module_files()
    graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names = imported_names(tree, module, path.name == "__init__.py")
        graph[module] = {name for name in names if name in files and name != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (its modules, the first repeated at the end), or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(graph[node]):
            cycle = visit(target)
            if cycle is not None:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        cycle = visit(node)
        if cycle is not None:
            return cycle
    return None


def test_the_graph_sees_imports_in_functions_and_skips_type_checking_ones():
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import signals\n"
        "if TYPE_CHECKING:\n"
        "    from .models import QueuedMessage\n"
        "def later():\n"
        "    from .mail.drain import MailDrain\n"
        "    import django_sendflare.client\n"
    )
    names = imported_names(ast.parse(source), "django_sendflare.worker", is_package=False)
    assert {"django_sendflare.signals", "django_sendflare.mail.drain"} <= names
    assert "django_sendflare.client" in names
    assert not any(name.startswith("django_sendflare.models") for name in names)
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert len(all_cycles({"a": {"b"}, "b": {"a", "c"}, "c": {"b"}})) == 2


def all_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles enough to show every tangle: each found cycle's last edge is cut, then again."""
    graph = {node: set(targets) for node, targets in graph.items()}
    cycles = []
    while (cycle := find_cycle(graph)) is not None:
        cycles.append(cycle)
        graph[cycle[-2]].discard(cycle[-1])
    return cycles


def test_no_import_cycles():
    cycles = all_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)
