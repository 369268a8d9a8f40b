"""One-way layers (issue 10): a module imports only modules of its own layer or below.

The table maps each top-level module or package of ``sampletune`` to a layer; every
``import`` / ``from ... import`` in ``src/sampletune/**.py`` (module level and inside
functions) is checked against it. A package's ``__init__.py`` belongs to its package.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "sampletune"

BASE, SAMPLING, TRAINING, HOOKS, FAMILIES, APP = range(6)
LAYERS = {
    "__init__": BASE, "data": BASE, "models": BASE, "io": BASE, "errors": BASE,
    "rundir": BASE, "plots": BASE, "seeding": BASE, "configs": BASE, "ray_cluster": BASE,
    "samplers": SAMPLING,
    "train": TRAINING,
    "features": HOOKS, "selection": HOOKS, "augment": HOOKS, "noisy": HOOKS,
    "swift": FAMILIES, "autosampling": FAMILIES, "budget": FAMILIES,
    "cli": APP, "__main__": APP, "commands": APP, "experiments": APP, "api": APP,
}
NAMES = ("base", "sampling", "training", "hooks", "families", "app")

# Upward imports not yet removed, as (file relative to src/sampletune, imported module).
# Empty since issue 10: the end-to-end Swift job moved to experiments/swift_pipeline.py. The
# test also fails when an entry here no longer occurs, so the list only shrinks.
KNOWN: set[tuple[str, str]] = set()


def _top(module: str) -> str | None:
    """``sampletune.x.y`` -> ``x``; ``sampletune`` -> ``__init__``; other packages -> None."""
    parts = module.split(".")
    if parts[0] != "sampletune":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(source: str, package: list[str]) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in ``source``, a module of ``package``
    (e.g. ``["sampletune", "samplers"]``), at any depth of the tree."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            if module == "sampletune":  # ``from sampletune import io``: the names are modules
                found += [(node.lineno, f"sampletune.{a.name}") for a in node.names
                          if a.name in LAYERS]
            else:
                found.append((node.lineno, module))
    return found


def violations() -> list[tuple[str, int, str, str]]:
    """(file, line, target, 'from -> to' layers) for every import of a higher layer."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        own = "__init__" if rel == Path("__init__.py") else rel.parts[0].removesuffix(".py")
        assert own in LAYERS, f"{rel}: no layer for {own!r}; add it to LAYERS"
        package = ["sampletune", *rel.parts[:-1]]
        for line, target in _imports(path.read_text(), package):
            top = _top(target)
            if top is None:
                continue
            assert top in LAYERS, f"{rel}:{line}: no layer for {target!r}; add it to LAYERS"
            if LAYERS[top] > LAYERS[own]:
                out.append((rel.as_posix(), line, target,
                            f"{NAMES[LAYERS[own]]} -> {NAMES[LAYERS[top]]}"))
    return out


def test_no_module_imports_a_higher_layer():
    found = violations()
    new = [v for v in found if (v[0], v[2]) not in KNOWN]
    stale = KNOWN - {(v[0], v[2]) for v in found}
    report = "\n".join(f"{f}:{line} -> {t}  ({how})" for f, line, t, how in new)
    assert not new, f"imports of a higher layer:\n{report}"
    assert not stale, f"no longer violated, remove from KNOWN: {sorted(stale)}"


def test_the_check_sees_function_level_and_relative_imports():
    src = ("import torch\n"
           "def f():\n    from sampletune.cli import main\n"
           "from ..train import loop\nfrom . import base\nfrom sampletune import io, __version__\n")
    assert _imports(src, ["sampletune", "samplers"]) == [
        (1, "torch"), (4, "sampletune.train"), (5, "sampletune.samplers"),
        (6, "sampletune.io"), (3, "sampletune.cli")]
