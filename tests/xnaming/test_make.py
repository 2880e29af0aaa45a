"""The README's test command must fail when it runs no test (pytest exit 5)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_test_fails_when_no_test_runs():
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "test",
            "PYTEST_ARGS=-k no_test_has_this_name -p no:cacheprovider",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0, result.stdout + result.stderr
    assert "deselected" in result.stdout
