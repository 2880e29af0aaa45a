"""`xnaming demo --no-serve` through the installed console script, on the real stage table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from xnaming.demo import STAGES


@pytest.mark.slow
def test_demo_no_serve_runs_every_built_stage(tmp_path):
    script = Path(sys.executable).with_name("xnaming")
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [str(script), "demo", "--no-serve", "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert workdir.is_dir()
    for stage in STAGES:
        assert stage.name in result.stdout
        if stage.run is None:
            assert f"not built yet (issue {stage.issue})" in result.stdout
