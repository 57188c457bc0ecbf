"""docs/failure-modes.md names only tests that exist."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_named_in_the_failure_modes_page_exists():
    page = (ROOT / "docs" / "failure-modes.md").read_text()
    named = re.findall(r"(tests/[\w/]+\.py)::(\w+)", page)
    assert len(named) >= 15
    for path, name in named:
        tree = ast.parse((ROOT / path).read_text())
        tests = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert name in tests, f"docs/failure-modes.md names {path}::{name}, which does not exist"
