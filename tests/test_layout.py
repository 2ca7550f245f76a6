"""The package's layering, read from its source: the kernel model's files import each
other at module level only and without a circle, and the explorer knows nothing of the
model."""

from __future__ import annotations

import ast
from pathlib import Path

import fsrace

PACKAGE = Path(fsrace.__file__).parent
# What models file systems, as against the explorer and its helpers (fsrace.distributed).
MODEL = {"kernel", "scenarios", "protocols", "checks", "ops", "stress", "report", "run", "cli",
         "matrix", "testing"}


def _imports(path: Path, package: str) -> tuple[set[str], list[tuple[int, str]]]:
    """The fsrace modules a file imports at run time at module level, and the imports
    inside functions (line, module). Imports under `if TYPE_CHECKING:` do not run."""
    tree = ast.parse(path.read_text(), str(path))
    top: set[str] = set()
    nested: list[tuple[int, str]] = []

    def resolve(node: ast.ImportFrom) -> str:
        if node.level == 0:
            return node.module or ""
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        return ".".join(base + ([node.module] if node.module else []))

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.ImportFrom):
                names = [resolve(child)]
            elif isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            else:
                names = []
            for name in names:
                if name.startswith("fsrace"):
                    if in_function:
                        nested.append((child.lineno, name))
                    else:
                        top.add(name)
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            visit(child, inner)

    visit(tree, False)
    return top, nested


def _modules(sub: str) -> dict[str, Path]:
    return {f"fsrace.{sub}.{p.stem}" if p.stem != "__init__" else f"fsrace.{sub}": p
            for p in sorted((PACKAGE / sub).glob("*.py"))}


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """An import circle in the graph (module -> modules it imports), or None."""
    done: set[str] = set()

    def walk(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return path[path.index(name):] + [name]
        if name in done:
            return None
        for dep in sorted(graph.get(name, ())):
            found = walk(dep, path + [name])
            if found:
                return found
        done.add(name)
        return None

    for name in sorted(graph):
        found = walk(name, [])
        if found:
            return found
    return None


def test_kernel_files_import_each_other_without_a_circle():
    modules = _modules("kernel")
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        top, nested = _imports(path, "fsrace.kernel")
        inside = [(line, mod) for line, mod in nested if mod.startswith("fsrace.kernel")]
        assert not inside, f"{path.name} imports kernel files inside functions: {inside}"
        graph[name] = {m for m in top if m in modules and m != name}
    assert len(graph) > 15 and graph["fsrace.kernel.ext4"]  # it read the real files
    circle = _circle(graph)
    assert circle is None, "import circle: " + " -> ".join(circle or [])


def test_the_explorer_imports_no_model():
    for name, path in _modules("explore").items():
        top, nested = _imports(path, "fsrace.explore")
        model = sorted(m for m in top | {m for _, m in nested}
                       if m.partition(".")[2].split(".")[0] in MODEL)
        assert not model, f"{name} imports {model}"


def test_the_layout_check_sees_nested_imports_and_circles(tmp_path):
    """The check itself: a function-level import is found, and a circle is a circle."""
    a = tmp_path / "a.py"
    a.write_text("from .b import x\n\ndef f():\n    from .c import y\n"
                 "    import fsrace.kernel.d\n")
    top, nested = _imports(a, "fsrace.kernel")
    assert top == {"fsrace.kernel.b"}
    assert nested == [(4, "fsrace.kernel.c"), (5, "fsrace.kernel.d")]
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_every_kernel_function_says_which_locks_it_is_called_with():
    """The model reads like the kernel only if each function says what its caller holds;
    lock primitives, the state encoding and the structures are not kernel paths."""
    missing = []
    for path in _modules("kernel").values():
        if path.stem in ("locking", "state", "structs", "kernel", "__init__"):
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                if "Called" not in (ast.get_docstring(node) or ""):
                    missing.append(f"{path.name}:{node.lineno} {node.name}")
    assert not missing, "no 'Called with' line: " + ", ".join(missing)
