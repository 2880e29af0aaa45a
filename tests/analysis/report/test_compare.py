"""``xnaming analyze --compare``: a before/after section against an earlier report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.namers.synthetic import synthetic_study
from analysis.report.compare import COMPARE_COLUMNS, PURITY_COMPARE_COLUMNS, comparison_table
from xnaming.cli import main


def _analyze(tmp_path, name, seed, *extra):
    activations, namings = synthetic_study(categories=2, annotators=3, activations=40, seed=seed)
    act, nam = tmp_path / f"{name}-activations.csv", tmp_path / f"{name}-namings.csv"
    activations.to_csv(act, index=False)
    namings.to_csv(nam, index=False)
    out = tmp_path / name
    args = ["analyze", "--activations", str(act), "--namings", str(nam), "--out", str(out)]
    assert main([*args, "--no-figures", *extra]) == 0
    return out


def test_compare_adds_a_before_after_section(tmp_path, capsys):
    categories = ["c001", "c002"]
    accuracy = pd.DataFrame({"category": [*categories, "overall"], "images": [5, 5, 10],
                             "accuracy": [1.0, 0.8, 0.9], "accuracy_no_cue": [0.2, np.nan, 0.5],
                             "cue_pull": [0.6, np.nan, 0.6]})  # fmt: skip
    accuracy.to_csv(tmp_path / "before-accuracy.csv", index=False)
    before = _analyze(tmp_path, "before", 3, "--accuracy", str(tmp_path / "before-accuracy.csv"))
    accuracy.assign(accuracy_no_cue=[0.95, np.nan, 0.9]).to_csv(
        tmp_path / "after-accuracy.csv", index=False
    )
    after = _analyze(tmp_path, "after", 4, "--accuracy", str(tmp_path / "after-accuracy.csv"),
                     "--compare", str(before))  # fmt: skip
    table = pd.read_csv(after / "compare.csv")
    assert list(table.columns) == COMPARE_COLUMNS
    assert table["category"].iloc[-1] == "overall"
    row = table.set_index("category").loc["c001"]
    assert (row["accuracy_no_cue_before"], row["accuracy_no_cue_after"]) == (0.2, 0.95)
    distrust = pd.read_csv(before / "distrust.csv").set_index("category")
    assert row["distrusted_share_before"] == pytest.approx(distrust.loc["c001", "distrusted_share"])
    assert 'id="before-after"' in (after / "report.html").read_text()
    purity = pd.read_csv(after / "compare_purity.csv")
    assert list(purity.columns) == PURITY_COMPARE_COLUMNS
    assert len(purity) == 2 * 3  # categories x annotators
    assert purity["xc_carried_after"].isna().all()  # no aligned xNN here
    assert "c001" in capsys.readouterr().out
    assert comparison_table(before, before)["coverage_before"].notna().any()


def test_compare_with_a_folder_that_is_no_report(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    activations, namings = synthetic_study(categories=2, annotators=3, activations=40, seed=3)
    activations.to_csv(tmp_path / "a.csv", index=False)
    namings.to_csv(tmp_path / "n.csv", index=False)
    status = main(["analyze", "--activations", str(tmp_path / "a.csv"), "--namings",
                   str(tmp_path / "n.csv"), "--out", str(tmp_path / "out"), "--no-figures",
                   "--compare", str(tmp_path / "empty")])  # fmt: skip
    assert status == 4
    assert "no distrust.csv" in capsys.readouterr().err
