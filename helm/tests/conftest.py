"""Shared by the tests of what is deployed."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# The modules this directory must contribute tests from: a module whose
# tests all disappeared (renamed, skipped at import) fails the run instead of
# leaving pytest to pass with fewer tests.
EXPECTED_MODULES = {"test_image.py"}


def pytest_collection_modifyitems(session, config, items):
    collected = {Path(item.fspath).name for item in items}
    missing = EXPECTED_MODULES - collected
    if missing and not config.getoption("-k") and not config.getoption("--deselect"):
        raise pytest.UsageError(f"no tests collected from {sorted(missing)}")
