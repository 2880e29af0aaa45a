"""The whole chain, end to end, through the installed console script: `xnaming demo --quick`.

Real parts throughout: toybirds, a toy CNN and its xNNs trained here, Excitation Backprop maps,
a real Label Studio server with the ML backend, boards published for two annotators, five
simulated annotators, and the analysis report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from xnaming.demo import STAGES


@pytest.mark.slow
@pytest.mark.server
def test_quick_demo_runs_the_whole_chain(tmp_path):
    script = Path(sys.executable).with_name("xnaming")
    workdir = tmp_path / "demo"
    command = [str(script), "demo", "--no-serve", "--quick", "--workdir", str(workdir)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1500)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "all stages done" in result.stdout
    for stage in STAGES:
        assert stage.name in result.stdout
    assert (workdir / "xnn" / "fidelity.csv").is_file()
    activations = pd.read_csv(workdir / "bundle" / "activations.csv")
    assert len(activations) > 0
    namings = pd.read_csv(workdir / "namings-simulated.csv", keep_default_na=False)
    assert namings["annotator"].nunique() == 5
    assert set(namings["activation_id"]) == set(activations["activation_id"])
    report = (workdir / "report" / "report.html").read_text()
    assert "<img" in report
    for table in ("coverage.csv", "purity.csv", "agreement.csv", "summaries.csv"):
        assert len(pd.read_csv(workdir / "report" / table)) > 0
    assert "ann1@demo.xnaming.org" in result.stdout  # the demo logins are printed
    _machine_namings_pass_analyze(script, workdir)
    assert "Label Studio" in result.stdout

    # A second run reuses every finished stage; only the servers start again.
    again = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert again.stdout.count("done earlier") == len(STAGES) - 2


def _machine_namings_pass_analyze(script: Path, workdir: Path) -> None:
    """`xnaming discover` on the demo's bundle, then `xnaming analyze` with the simulated
    annotators: it runs, and the report says which namings are a machine's. (Whether they beat
    chance is tested on a larger toybirds run, tests/analysis/test_discover.py: the quick demo
    has too few maps per category for groups of three images.)"""
    bundle, auto = workdir / "bundle", workdir / "auto.csv"
    for command in (
        ["discover", str(bundle), "--out", str(auto)],
        ["analyze", "--activations", str(bundle), "--namings",
         str(workdir / "namings-simulated.csv"), str(auto), "--out", str(workdir / "report-auto"),
         "--no-figures"],
    ):  # fmt: skip
        done = subprocess.run([str(script), *command], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report = (workdir / "report-auto" / "report.html").read_text()
    assert "Machine namings: auto-embeddings are made by a machine" in report
