"""The import rule of design §3: linalg ← analysis/cost ← planners ← plans/store/io/viz ← cli."""

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "curiss"

# top-level curiss modules each layer may import (besides third-party packages allowed below)
LAYER = {
    "linalg": 0,
    "analysis": 1, "cost": 1, "datasets": 1,
    "planners": 2, "replay": 2, "compare": 2,
    "plans": 3, "store": 3, "io": 3, "_formats_als": 3, "_formats_hdf5": 3, "viz": 3,
    "cli": 4,
}
STDLIB = set(sys.stdlib_module_names)


def imports_of(path: Path):
    """(module, absolute curiss submodule or None) for every import in a file."""
    pkg = path.relative_to(SRC.parent).with_suffix("").parts
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(pkg[:-node.level]) if path.name != "__init__.py" else list(pkg[:len(pkg) - node.level + 1])
                mod = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    for a in node.names:
                        yield f"{mod}.{a.name}"
                else:
                    yield mod
            else:
                yield node.module


def layer_of(module: str):
    parts = module.split(".")
    if parts[0] != "curiss" or len(parts) == 1:
        return None
    return LAYER.get(parts[1])


FILES = sorted(SRC.rglob("*.py"))


def test_every_module_has_a_layer():
    """Every module has a layer (one missing from LAYER would not be checked), and LAYER names
    no module that does not exist (it named "export")."""
    tops = {p.relative_to(SRC).parts[0].removesuffix(".py") for p in FILES} - {"__init__"}
    assert tops == set(LAYER), (f"no layer: {sorted(tops - set(LAYER))}; "
                                f"no such module: {sorted(set(LAYER) - tops)}")


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_only_downward(path):
    mine = layer_of(".".join(path.relative_to(SRC.parent).with_suffix("").parts))
    for mod in imports_of(path):
        top = mod.split(".")[0]
        assert top != "sim_devices", f"{path.name} imports sim_devices (only tests/profiles/demos may)"
        other = layer_of(mod)
        if mine is not None and other is not None:
            assert other <= mine, f"{path.name} (layer {mine}) imports {mod} (layer {other})"
        if mine == 0:
            assert top in STDLIB or top in ("numpy", "scipy") or mod.startswith("curiss.linalg"), \
                f"linalg must only use numpy/scipy: {path.name} imports {mod}"
        if mine is not None and mine <= 2:
            assert top not in ("bluesky", "ophyd", "ophyd_async", "tiled", "databroker",
                               "bluesky_tiled_plugins"), f"{path.name} (layer {mine}) imports {mod}"
