"""The package's shape, checked from the source (AST), not by importing it.

docs/architecture.md states the rules; these tests keep them true:

* no import cycles among fastcnn's modules, function-level imports included;
* data flows downward: a module imports only its own layer or the layers below it;
* function-level imports only to defer something heavy, each with a comment saying why;
* no module over 450 lines and no function over 60, except the ones listed below
  with their reason (an entry that no longer needs its exception fails too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fastcnn

PACKAGE = Path(fastcnn.__file__).resolve().parent

#: layer of each top-level part of the package; a module may import its own layer and
#: the layers below (lower numbers), never above.
LAYERS = {
    "common": 0,
    "kernels": 1,
    "nn": 2, "optim": 2, "data": 2,
    "train": 3,
    "zoo": 4, "tuning": 4, "interop": 4,
    "tools": 5,
    "cli": 6,
    "__init__": 7, "__main__": 7, "_compat": 7,
}

#: fastcnn modules that may be imported inside a function, and the heavy thing each
#: defers (a function-level import of anything else inside fastcnn is a layering smell)
DEFERRABLE = {
    "fastcnn.tools.plot": "matplotlib",
    "fastcnn.tuning._dask": "dask.distributed (optional: fastcnn[distributed])",
}

#: modules exempt from the import rules for now, and why (an entry whose module no longer
#: breaks a rule fails too)
IMPORT_EXCEPTIONS: dict[str, str] = {}

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60

#: (path relative to the package, function name or None for the module) -> why it is longer
EXCEPTIONS: dict[tuple[str, str | None], str] = {}


def _module_name(path: Path) -> str:
    parts = ["fastcnn", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def _imports(module: str, path: Path):
    """Yield ``(target module, line, inside a function)`` for every fastcnn import."""
    tree = ast.parse(path.read_text())
    in_function = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function.update(id(n) for n in ast.walk(node) if n is not node)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([node.module] if node.module else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                     for a in node.names]
        else:
            continue
        for name in names:
            while name not in MODULES and "." in name:
                name = name.rpartition(".")[0]
            if name in MODULES and name != module:
                yield name, node.lineno, id(node) in in_function


GRAPH = {m: sorted({t for t, _, _ in _imports(m, p)}) for m, p in MODULES.items()}


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _exempt(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in IMPORT_EXCEPTIONS)


def test_no_import_cycles():
    cycles = [c for c in _cycles(GRAPH) if not all(_exempt(m) for m in c)]
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]


def test_imports_flow_downward():
    upward = [f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
              for m, targets in GRAPH.items() for t in targets
              if _layer(t) > _layer(m) and not t.startswith(m + ".")]
    assert not upward, "imports against the data flow:\n" + "\n".join(upward)


def _commented(lines, lineno) -> bool:
    """A comment on the import's line, or above it (past a block of imports)."""
    if "#" in lines[lineno - 1]:
        return True
    i = lineno - 2
    while i >= 0 and lines[i].strip().startswith(("import ", "from ")):
        i -= 1
    return i >= 0 and lines[i].strip().startswith("#")


def _import_problems(module, path):
    problems = []
    lines = path.read_text().splitlines()
    for func in ast.walk(ast.parse(path.read_text())):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not _commented(
                    lines, node.lineno):
                problems.append(f"{module}:{node.lineno}: no comment saying why it is "
                                f"deferred")
    for target, line, inside in _imports(module, path):
        if inside and target not in DEFERRABLE:
            problems.append(f"{module}:{line}: function-level import of {target} "
                            f"(import it at the top of the module)")
    return problems


def test_function_level_imports_defer_something_heavy_and_say_why():
    problems = [problem for module, path in MODULES.items() if not _exempt(module)
                for problem in _import_problems(module, path)]
    assert not problems, "\n".join(problems)


def test_every_import_exception_is_still_needed():
    stale = []
    for prefix in IMPORT_EXCEPTIONS:
        modules = [m for m in MODULES if m == prefix or m.startswith(prefix + ".")]
        in_cycle = any(set(c) & set(modules) for c in _cycles(GRAPH))
        if not modules or not (in_cycle or any(_import_problems(m, MODULES[m])
                                               for m in modules)):
            stale.append(prefix)
    assert not stale, f"follow the import rules now (remove from IMPORT_EXCEPTIONS): {stale}"


def _sizes():
    """``((relative path, function or None), lines)`` for every module and function."""
    for path in sorted(PACKAGE.rglob("*.py")) + sorted(PACKAGE.rglob("*.pyx")):
        rel = path.relative_to(PACKAGE).as_posix()
        text = path.read_text()
        yield (rel, None), text.count("\n")
        if path.suffix == ".py":
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield (rel, node.name), node.end_lineno - node.lineno + 1


def _too_long(key, lines) -> bool:
    return lines > (MAX_MODULE_LINES if key[1] is None else MAX_FUNCTION_LINES)


def test_modules_and_functions_are_short_enough():
    long = [f"{path}{'' if name is None else ':' + name}: {lines} lines"
            for (path, name), lines in _sizes()
            if _too_long((path, name), lines) and (path, name) not in EXCEPTIONS]
    assert not long, (f"over {MAX_MODULE_LINES} lines per module / {MAX_FUNCTION_LINES} per "
                      f"function (split it, or add it to EXCEPTIONS with the reason):\n"
                      + "\n".join(long))


def test_every_size_exception_is_still_needed():
    sizes = dict(_sizes())
    stale = [key for key in EXCEPTIONS if key not in sizes or not _too_long(key, sizes[key])]
    assert not stale, f"short enough now (remove from EXCEPTIONS): {stale}"
