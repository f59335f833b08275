"""The layering of the code (docs/architecture.md): the library (tf_scenes/) never imports the input
pipelines or the studies, the pipelines never import the studies, no module imports another in a
cycle (function-local imports included), no family is named outside a few places, and installing
the package claims one top-level name."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# folder -> the package it installs as (setup.py maps pipelines/ and experiments/ into tf_scenes)
LAYERS = {"tf_scenes": "tf_scenes", "pipelines": "tf_scenes.pipelines", "experiments": "tf_scenes.experiments"}


def _modules() -> dict[str, Path]:
    out = {}
    for folder, package in LAYERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


def _imports(name: str, path: Path, modules: dict) -> set[str]:
    """Every module `name` imports anywhere in its file (top level and inside functions)."""
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules and "." in t:
                t = t.rsplit(".", 1)[0]
            if t in modules and t != name:
                found.add(t)
    return found


GRAPH = {n: _imports(n, p, _modules()) for n, p in _modules().items()}


def _layer(module: str) -> str:
    for layer in ("tf_scenes.experiments", "tf_scenes.pipelines"):
        if module == layer or module.startswith(layer + "."):
            return layer
    return "tf_scenes"


@pytest.mark.parametrize("lower, upper", [("tf_scenes", "tf_scenes.pipelines"), ("tf_scenes", "tf_scenes.experiments"),
                                          ("tf_scenes.pipelines", "tf_scenes.experiments")])
def test_a_lower_layer_never_imports_a_higher_one(lower, upper):
    bad = sorted(f"{m} -> {t}" for m, ts in GRAPH.items() if _layer(m) == lower for t in ts if _layer(t) == upper)
    assert bad == []


def test_no_import_cycles():
    """Tarjan's strongly connected components of the import graph: every one has a single module."""
    index, low, stack, on, cycles = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert cycles == []


def test_no_bare_top_level_import_of_pipelines_or_experiments():
    """They install inside tf_scenes: `import pipelines` would only work from the checkout."""
    bad = []
    for folder in (*LAYERS, "tests", "bench"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                mods = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                        [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
                bad += [f"{path.relative_to(REPO)}: {m}" for m in mods if m.split(".")[0] in ("pipelines", "experiments")]
    assert bad == []


# Outside its own two folders a family's name may appear in at most this many source files of the
# package (tf_scenes/, pipelines/, experiments/): the list of families (tf_scenes/families.py) and
# the synthetic data generator where it builds a family's data. (The benchmarks in bench/ measure
# particular models and name them.)
MAX_FILES_NAMING_A_FAMILY = 4


@pytest.mark.parametrize("family", ["two_stage", "dcasenet", "weak_sed", "raw_waveform"])
def test_a_family_is_named_in_few_source_files_outside_its_folders(family):
    own = (REPO / "tf_scenes" / family, REPO / "experiments" / family)
    files = []
    for folder in LAYERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            if any(o in path.parents for o in own):
                continue
            if family in path.read_text():
                files.append(str(path.relative_to(REPO)))
    assert len(files) <= MAX_FILES_NAMING_A_FAMILY, files


def test_setup_installs_one_top_level_package():
    import runpy

    import setuptools

    seen = {}

    def fake_setup(**kw):
        seen.update(kw)

    real, setuptools.setup = setuptools.setup, fake_setup
    try:
        runpy.run_path(str(REPO / "setup.py"), run_name="__main__")
    finally:
        setuptools.setup = real
    assert {p.split(".")[0] for p in seen["packages"]} == {"tf_scenes"}
    assert seen["package_dir"] == {"tf_scenes.pipelines": "pipelines", "tf_scenes.experiments": "experiments"}
    assert "tf_scenes.experiments.two_stage" in seen["packages"] and "tf_scenes.pipelines" in seen["packages"]
