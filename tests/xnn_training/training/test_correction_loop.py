"""The correction loop through the commands a user runs, on toybirds with a planted cue.

Data (4 species of 120 images at 64 px, the cue on species 2), toy CNN, xNNs, the feedback
split's maps named by the simulated annotators, then ``train dnn --from --feedback`` with the
annotators' regions and with the two controls, each measured by ``xnaming evaluate``. The
annotators' regions must undo the shortcut; the same correction with the regions moved at random
or with the verdicts shuffled between maps must not (it is what the annotators said that fixes
it). On a data set without a cue, no class loses: at this size the four-class classifier
recognises species 001 by exclusion, its maps fall on the background and it is flagged
(tests/analysis/test_shortcut_found.py), so a correction may run, but it must cost nothing.
docs/measurements.md has the bench's figures at the demo's size, where nothing is flagged
without a cue; these are the issue's goals on a smaller data set.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from xnaming.cli import main

pytestmark = pytest.mark.slow

DATA = ["--classes", "4", "--per-class", "120", "--size", "64", "--seed", "0"]


def _loop(root: Path, shortcut: list[str]) -> Path:
    """Data, classifier, xNNs, the feedback split's maps and their simulated namings."""
    steps = [
        ["data", "toybirds", "--out", str(root / "data"), *DATA, *shortcut],
        ["train", "dnn", "--data", str(root / "data"), "--out", str(root / "dnn")],
        ["train", "xnn", "--dnn", str(root / "dnn"), "--out", str(root / "xnn"),
         "--epochs", "60"],
        ["explain", "--dnn", str(root / "dnn"), "--xnn", str(root / "xnn"), "--data",
         str(root / "data"), "--split", "feedback", "--out", str(root / "feedback"),
         "--embedding-layers", "none"],
        ["simulate", str(root / "feedback"), "--out", str(root / "namings.csv")],
        ["evaluate", "--dnn", str(root / "dnn"), "--data", str(root / "data"), "--out",
         str(root / "before")],
    ]  # fmt: skip
    for step in steps:
        assert main(step) == 0, step
    return root


def _correct(root: Path, regions: str) -> pd.DataFrame:
    """``train dnn --from --feedback`` with these regions, then ``evaluate``: its table."""
    out = root / regions
    code = main(["train", "dnn", "--from", str(root / "dnn"), "--feedback",
                 str(root / "namings.csv"), "--bundle", str(root / "feedback"), "--data",
                 str(root / "data"), "--out", str(out / "dnn"), "--regions", regions])  # fmt: skip
    assert code == 0
    assert main(["evaluate", "--dnn", str(out / "dnn"), "--data", str(root / "data"),
                 "--out", str(out)]) == 0  # fmt: skip
    return pd.read_csv(out / "accuracy.csv").set_index("category")


def _reaches_the_goals(table: pd.DataFrame, before: pd.DataFrame) -> bool:
    """The issue's goals: the planted class right without its cue, the cue pulling nothing,
    overall within 2 points and no other class more than 3 points lower."""
    planted = table["cue_pull"].drop("overall").dropna().index[0]
    others = table.index.drop(["overall", planted])
    drops = before.loc[others, "accuracy"] - table.loc[others, "accuracy"]
    return bool(
        table.loc[planted, "accuracy_no_cue"] >= 0.9
        and table.loc[planted, "cue_pull"] <= 0.05
        and abs(table.loc["overall", "accuracy"] - before.loc["overall", "accuracy"]) <= 0.02
        and drops.max() <= 0.03
    )


@pytest.fixture(scope="module")
def cued(tmp_path_factory, one_torch_thread) -> Path:
    return _loop(tmp_path_factory.mktemp("cued"), ["--shortcut", "2"])


def test_the_annotators_regions_undo_the_shortcut(cued):
    before = pd.read_csv(cued / "before" / "accuracy.csv").set_index("category")
    planted = before["cue_pull"].drop("overall").dropna().index[0]
    assert before.loc[planted, "accuracy_no_cue"] < 0.5  # the classifier took the shortcut
    assert _reaches_the_goals(_correct(cued, "annotated"), before)


@pytest.mark.parametrize("control", ["random", "shuffled"])
def test_the_controls_do_not(cued, control):
    before = pd.read_csv(cued / "before" / "accuracy.csv").set_index("category")
    assert not _reaches_the_goals(_correct(cued, control), before)


def test_a_data_set_without_a_cue_loses_nothing(tmp_path, capsys, one_torch_thread):
    root = _loop(tmp_path, [])
    code = main(["train", "dnn", "--from", str(root / "dnn"), "--feedback",
                 str(root / "namings.csv"), "--bundle", str(root / "feedback"), "--data",
                 str(root / "data"), "--out", str(root / "after")])  # fmt: skip
    if code == 3:  # nothing rejected at all: refused, nothing written
        assert "nothing to correct" in capsys.readouterr().err
        assert not (root / "after").exists()
        return
    assert code == 0
    before = pd.read_csv(root / "before" / "accuracy.csv").set_index("category")
    after = pd.read_csv(root / "after" / "accuracy.csv").set_index("category")
    change = after["accuracy"] - before["accuracy"]
    assert change.drop("overall").min() >= -0.01, change  # no class lower (one image is 0.025)
    assert abs(change["overall"]) <= 0.02, change
