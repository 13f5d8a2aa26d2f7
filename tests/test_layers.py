"""Imports run one way: io -> embed -> bench -> plots -> dashboard -> pages, with no cycles.

Every ``.py`` file of ``bioviz/``, ``app.py`` and ``app_pages/`` is parsed (never imported), every
import statement is read, function-level ones included (a lazy import is still a dependency; only
``if TYPE_CHECKING:`` blocks, which never run, are skipped), and relative imports are resolved the
way Python resolves them: ``from . import cache`` is an edge to the module ``bioviz.embed.cache``,
``from .. import __version__`` an edge to the package ``bioviz`` itself.

Layers (a module may import its own layer and the ones below):

    io         bioviz/__init__, errors, atomic, images, screen, relationships, segment, demo/, ...
    embed      bioviz/embed/
    bench      bioviz/bench/
    plots      bioviz/plots/
    dashboard  bioviz/dashboard/
    pages      app.py, app_pages/
    interface  bioviz/cli.py, __main__, commands/, and the notebook API pp/tl/pl (anything below)
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("io", "embed", "bench", "plots", "dashboard", "pages", "interface")
RANK = {name: i for i, name in enumerate(LAYERS)}
INTERFACE = {"bioviz.cli", "bioviz.__main__", "bioviz.pp", "bioviz.tl", "bioviz.pl"}


def discover(root: Path = ROOT) -> dict[str, tuple[Path, bool]]:
    """{module name: (file, is_package)} for bioviz, app.py and app_pages (pages named by file stem)."""
    mods = {}
    for p in sorted((root / "bioviz").rglob("*.py")):
        parts = list(p.relative_to(root).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        mods[".".join(parts)] = (p, is_pkg)
    if (root / "app.py").exists():
        mods["app"] = (root / "app.py", False)
    for p in sorted((root / "app_pages").glob("*.py")):
        mods[f"app_pages.{p.stem}"] = (p, False)
    return mods


def layer_of(mod: str) -> str:
    parts = mod.split(".")
    if parts[0] in ("app", "app_pages"):
        return "pages"
    if mod in INTERFACE or (len(parts) > 1 and parts[1] == "commands"):
        return "interface"
    if len(parts) > 1 and parts[1] in ("embed", "bench", "plots", "dashboard"):
        return parts[1]
    return "io"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Import nodes anywhere in the tree (functions, try blocks...) except under ``if TYPE_CHECKING``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _internal(name: str, mods) -> str | None:
    """The longest known module that ``name`` is or lies inside (None: outside the project)."""
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in mods:
            return cand
        parts.pop()
    return None


def edges_of(mod: str, mods) -> list[tuple[str, int]]:
    """(imported project module, line) for every import in ``mod``'s file."""
    path, is_pkg = mods[mod]
    tree = ast.parse(path.read_text(), filename=str(path))
    # The package a relative import is relative to: the module itself for an __init__.
    package = mod.split(".") if is_pkg else mod.split(".")[:-1]
    out = []
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _internal(alias.name, mods)
                if target:
                    out.append((target, node.lineno))
            continue
        if node.level:
            if node.level - 1 > len(package):
                raise ValueError(f"{path}:{node.lineno}: relative import beyond the top package")
            base = package[:len(package) - (node.level - 1)]
            full = ".".join(base + ([node.module] if node.module else []))
        else:
            full = node.module or ""
        if _internal(full, mods) is None:
            continue
        for alias in node.names:
            # `from pkg import sub` names the submodule when one exists, else an attribute of pkg.
            sub = f"{full}.{alias.name}"
            out.append((sub if sub in mods else _internal(full, mods), node.lineno))
    return [(t, line) for t, line in out if t != mod]


def build_graph(root: Path = ROOT):
    mods = discover(root)
    return {m: edges_of(m, mods) for m in mods}, mods


def upward_imports(graph) -> list[str]:
    bad = []
    for mod, edges in graph.items():
        for target, line in edges:
            if RANK[layer_of(target)] > RANK[layer_of(mod)]:
                bad.append(f"{mod} ({layer_of(mod)}) line {line} imports {target} ({layer_of(target)})")
    return sorted(set(bad))


def find_cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]
    nodes = set(graph) | {t for edges in graph.values() for t, _ in edges}
    succ = {n: sorted({t for t, _ in graph.get(n, [])}) for n in nodes}

    def strong(v):
        # Iterative Tarjan: the module graph is deep enough to make recursion fragile.
        work = [(v, iter(succ[v]))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(succ[w])))
                    advanced = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))

    for n in sorted(nodes):
        if n not in index:
            strong(n)
    return sorted(out)


def _describe_cycle(comp, graph) -> str:
    inside = set(comp)
    lines = sorted({f"  {m} line {line} -> {t}" for m in comp for t, line in graph[m] if t in inside})
    return "cycle among " + ", ".join(comp) + ":\n" + "\n".join(lines)


# --- the checker on synthetic trees: it must be able to fail ---------------------------------------

def _tree(tmp_path, files: dict[str, str]) -> Path:
    for rel, src in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(src)
    return tmp_path


def test_checker_finds_a_function_level_cycle_through_a_relative_import(tmp_path):
    root = _tree(tmp_path, {
        "bioviz/__init__.py": "",
        "bioviz/embed/__init__.py": "",
        "bioviz/embed/engine.py": "from .confounders import table\n",
        "bioviz/embed/confounders.py": "def table():\n    from .engine import embed\n",
        "bioviz/embed/cache.py": "from .. import errors\n",
        "bioviz/errors.py": "",
    })
    graph, _ = build_graph(root)
    assert graph["bioviz.embed.cache"] == [("bioviz.errors", 1)]
    assert find_cycles(graph) == [["bioviz.embed.confounders", "bioviz.embed.engine"]]
    assert upward_imports(graph) == []


def test_checker_finds_upward_imports_and_package_cycles(tmp_path):
    root = _tree(tmp_path, {
        "bioviz/__init__.py": "",
        "bioviz/plots/__init__.py": "",
        "bioviz/plots/figures.py": "import numpy\nfrom ..dashboard.datasets import null_recall\n",
        "bioviz/dashboard/__init__.py": "",
        "bioviz/dashboard/datasets.py": "from bioviz.plots import figures\n",
        # A registry that imports its embedders while they import it: the package-level cycle.
        "bioviz/embed/__init__.py": "from .registry import create\n",
        "bioviz/embed/registry.py": "def load():\n    from . import pixel_stats\n",
        "bioviz/embed/pixel_stats.py": "from .registry import create\n",
        "bioviz/bench/__init__.py": "",
        "bioviz/bench/run.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                               "    from ..plots import figures\n",
        "app.py": "import bioviz.dashboard.datasets\n",
    })
    graph, _ = build_graph(root)
    assert upward_imports(graph) == [
        "bioviz.plots.figures (plots) line 2 imports bioviz.dashboard.datasets (dashboard)"]
    assert find_cycles(graph) == [
        ["bioviz.dashboard.datasets", "bioviz.plots.figures"],
        ["bioviz.embed.pixel_stats", "bioviz.embed.registry"]]
    assert layer_of("app") == "pages" and layer_of("bioviz.commands.embed") == "interface"
    assert layer_of("bioviz.screen") == "io" and layer_of("bioviz.tl") == "interface"


# --- the real package ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def graph():
    g, mods = build_graph()
    assert "bioviz.embed.registry" in mods and "bioviz.plots.figures" in mods
    return g


def test_no_module_imports_from_a_layer_above_it(graph):
    bad = upward_imports(graph)
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_import_cycles(graph):
    cycles = find_cycles(graph)
    assert not cycles, "\n".join(_describe_cycle(c, graph) for c in cycles)


def test_registry_imports_no_embedder(graph):
    # The built-ins are listed where the package is assembled (bioviz/embed/__init__.py).
    assert {t for t, _ in graph["bioviz.embed.registry"]} <= {"bioviz", "bioviz.errors"}


def test_importing_the_embed_package_registers_builtins_without_torch():
    # The built-ins are imported by bioviz/embed/__init__.py; none may pull torch in at import time
    # (it costs seconds and a CPU-only `bioviz embed --list` never needs it).
    import subprocess
    import sys

    code = ("import sys, bioviz.embed as e; names = e.list_embedders(include_hidden=True); "
            "print('torch' in sys.modules, 'focus' in names, 'pixel_stats' in names, 'timm:<model>' in names)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "True", "True", "True"], out.stdout + out.stderr


def test_confounder_table_from_the_engine_alone_equals_the_one_embed_writes(small_screen, tmp_path_factory):
    # confounders.py only assembles; the engine computes its sources, either as a side pass of
    # embed() or on its own (compute_confounders): both must give the same table.
    import shutil

    from bioviz.embed import compute_confounders, embed, load_confounders
    from bioviz.embed.confounders import assemble_confounders, missing_sources
    from bioviz.errors import EmbedderError
    from bioviz.screen import read_screen

    other = tmp_path_factory.mktemp("copy") / "small"
    shutil.copytree(small_screen, other)
    a, b = read_screen(small_screen), read_screen(other)
    assert missing_sources(a) == ["cell_count", "pixel_stats", "focus"]
    with pytest.raises(EmbedderError, match="needs cell_count, pixel_stats, focus"):
        assemble_confounders(a)
    direct = compute_confounders(a, workers=0)
    assert missing_sources(a) == []
    embed(b, ["random"], workers=0)
    via_embed = load_confounders(b)
    assert direct.equals(via_embed) and direct.equals(load_confounders(a))
    assert direct["cell_count"].dtype.kind == "i" and len(direct) == a.n_sites
