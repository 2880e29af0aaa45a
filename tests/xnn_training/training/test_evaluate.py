"""``xnaming evaluate``: accuracy per category, and with a planted cue accuracy_no_cue and
cue_pull, measured on images toybirds draws again with or without the cue."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from xnaming.cli import main
from xnn_training.data.toybirds import make_toybirds
from xnn_training.training.evaluate import ACCURACY_COLUMNS, CUE_COLUMNS, accuracy_table


class CueDetector(nn.Module):
    """Predicts ``planted`` when an image shows magenta (the cue), else class 0."""

    def __init__(self, classes: int, planted: int) -> None:
        super().__init__()
        self.classes, self.planted = classes, planted

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        magenta = (images[:, 0] > 2.0) & (images[:, 1] < -1.8) & (images[:, 2] > 2.4)
        logits = torch.zeros(len(images), self.classes)
        cued = magenta.flatten(1).any(1)
        logits[cued, self.planted] = 1.0
        logits[~cued, 0] = 1.0
        return logits


@pytest.fixture(scope="module")
def cued(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    return make_toybirds(root / "data", classes=3, per_class=6, size=40, seed=1, shortcut="3")


def test_a_model_that_reads_only_the_cue(cued):
    classes = pd.read_csv(cued / "images.csv")["category"].unique().tolist()
    table = accuracy_table(CueDetector(3, 2), cued, classes=classes, image_size=40)
    assert list(table.columns) == ACCURACY_COLUMNS + CUE_COLUMNS
    assert list(table["category"]) == [*classes, "overall"]
    assert list(table["images"]) == [2, 2, 2, 6]
    assert list(table["accuracy"]) == pytest.approx([1, 0, 1, 4 / 6])
    assert table.loc[2, "accuracy_no_cue"] == 0.0  # without the cue it is class 0
    assert table.loc[3, "accuracy_no_cue"] == pytest.approx(2 / 6)
    assert table.loc[2, "cue_pull"] == table.loc[3, "cue_pull"] == 1.0
    assert table.loc[[0, 1], CUE_COLUMNS].isna().all().all()


def test_evaluate_command_on_a_trained_run(toybirds_run, tmp_path, capsys):
    assert main(["evaluate", "--dnn", str(toybirds_run.dnn), "--data", str(toybirds_run.data),
                 "--out", str(tmp_path / "eval"), "--device", "cpu"]) == 0  # fmt: skip
    table = pd.read_csv(tmp_path / "eval" / "accuracy.csv")
    assert list(table.columns) == ACCURACY_COLUMNS  # no cue: no cue columns
    trained = pd.read_csv(toybirds_run.dnn / "accuracy.csv")
    assert table["accuracy"].tolist() == pytest.approx(trained["accuracy"].tolist(), abs=1e-6)
    assert "wrote" in capsys.readouterr().out
    assert not math.isnan(table["accuracy"].iloc[-1])
