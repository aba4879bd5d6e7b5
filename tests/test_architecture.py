"""The layout rules a newcomer can rely on, checked on the source (no imports executed):
the core never imports the UI or a plotting/serving library, diagnostics is consumed by no other
core module, modules import each other without cycles, files stay small, and nothing points
outside the repository."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "explorer"
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, top_level_only: bool) -> set[str]:
    """Absolute module names imported by ``path`` (``from a.b import c`` counts a.b and a.b.c)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def internal(names: set[str], known: dict[str, Path]) -> set[str]:
    return {n for n in names if n in known}


def test_core_imports_no_ui_and_no_plotting_or_serving_library():
    bad = {}
    for name, path in modules().items():
        if name.startswith("explorer.core"):
            found = {n for n in imports(path, top_level_only=False)
                     if n.split(".")[0] in ("panel", "bokeh", "holoviews", "matplotlib")
                     or n.startswith("explorer.ui") or n in ("explorer.cli", "explorer.app")}
            if found:
                bad[name] = sorted(found)
    assert not bad, bad


def test_diagnostics_is_imported_by_no_other_core_module():
    """Diagnostics consumes the primitives (linalg, spectra, wavelets, the scattering filters) and
    nothing in the modelling core depends on it; only the workflows layer, which assembles the
    one comparison report for the app, the command line and the notebooks, calls it."""
    known = modules()
    diag = {n for n in known if n == "explorer.core.diagnostics"
            or n.startswith("explorer.core.diagnostics.")}
    users = {name: sorted(internal(imports(path, False), known) & diag)
             for name, path in known.items()
             if name.startswith("explorer.core") and name not in diag
             and name != "explorer.core.workflows"}
    assert not {k: v for k, v in users.items() if v}, users


def test_no_import_cycle_between_modules():
    known = modules()
    graph = {name: {n for n in internal(imports(path, True), known) if n != name}
             for name, path in known.items()}
    # a package's __init__ importing its own submodules is how packages are built, not a cycle
    for name in graph:
        graph[name] = {n for n in graph[name] if not n.startswith(name + ".")}
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles


def test_no_source_file_over_600_lines_without_a_stated_reason():
    long = {}
    for path in list(PACKAGE.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if lines > MAX_LINES and f"longer than {MAX_LINES} lines" not in doc.lower():
            long[str(path.relative_to(ROOT))] = lines
    assert not long, long


#: stems of working notes that live outside the repository: never named in it (the repository's
#: science is in its own docs/)
OUTSIDE_NOTES = ("SCIENCE", "GUIDE")


def test_nothing_points_outside_the_repository():
    hits = []
    for path in ROOT.rglob("*"):
        if (path.suffix in (".py", ".md", ".ipynb", ".toml", ".cfg", ".txt") and path.is_file()
                and not any(p.startswith(".") for p in path.relative_to(ROOT).parts)
                and path.name != "test_architecture.py"):
            text = path.read_text(encoding="utf-8", errors="replace")
            if any(f"{name}.md" in text for name in OUTSIDE_NOTES):
                hits.append(str(path.relative_to(ROOT)))
    assert not hits, hits
