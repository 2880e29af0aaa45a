"""The paper's Table 1 (summary.csv, and the fidelity report's shared columns), by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from xnn_training.nets.xnn import XNN
from xnn_training.training.fidelity import fidelity_report
from xnn_training.training.table_one import TABLE_ONE_COLUMNS, table_one


def _images() -> pd.DataFrame:
    # a: two images, the DNN right on both, the xNN on one; b: one image, both wrong.
    return pd.DataFrame(
        {
            "category": ["a", "a", "b"],
            "true_category": ["a", "a", "b"],
            "prediction": ["a", "a", "a"],
            "xnn_prediction": ["a", "b", "a"],
            "score": ["1.0", "2.0", "0.0"],  # as read from images.csv: strings
            "dnn_logit": ["1.0", "4.0", "3.0"],
            "n_significant": ["1", "3", "2"],
        }
    )


def test_table_one_by_hand() -> None:
    table = table_one(_images()).set_index("category")
    assert tuple(table.reset_index().columns) == TABLE_ONE_COLUMNS
    assert table.index.tolist() == ["a", "b", "overall"]
    assert table.loc["a"].tolist() == [2, 4, 2.0, 1.0, 0.5, pytest.approx(math.sqrt(2))]
    assert table.loc["b"].tolist() == [1, 2, 2.0, 0.0, 0.0, 3.0]
    overall = table.loc["overall"]
    assert overall["images"] == 3
    assert overall["activations"] == 6
    assert overall["dnn_accuracy"] == pytest.approx(2 / 3)
    assert overall["xnn_accuracy"] == pytest.approx(1 / 3)
    assert overall["xnn_rmse"] == pytest.approx(math.sqrt((0 + 4 + 9) / 3))


def test_categories_order_and_missing_ones() -> None:
    table = table_one(_images(), categories=["b", "c", "a"])
    assert table["category"].tolist() == ["b", "c", "a", "overall"]
    empty = table.set_index("category").loc["c"]
    assert (empty["images"], empty["activations"]) == (0, 0)
    assert math.isnan(empty["dnn_accuracy"])


def test_optional_xnn_columns_and_bad_input() -> None:
    bare = table_one(_images().drop(columns=["xnn_prediction", "score", "dnn_logit"]))
    assert bare["xnn_accuracy"].isna().all()
    assert bare["dnn_accuracy"].tolist() == [1.0, 0.0, pytest.approx(2 / 3)]
    assert table_one(None).columns.tolist() == list(TABLE_ONE_COLUMNS)
    with pytest.raises(ValueError, match=r"needs the columns \['n_significant'\]"):
        table_one(_images().drop(columns=["n_significant"]))


def test_the_fidelity_report_takes_its_table_one_columns_from_table_one() -> None:
    torch.manual_seed(3)
    xnn = XNN(6, 2, k=3, hidden=(4,)).eval()
    features, logits = torch.rand(30, 6), torch.randn(30, 4) * 3
    labels = torch.randint(0, 4, (30,))
    report = fidelity_report(xnn, features, logits, labels, [1, 3], ["one", "three"])
    mixed = logits.clone()
    mixed[:, [1, 3]] = xnn(features)["scores"]
    one = labels == 1
    row = report.set_index("category").loc["one"]
    assert row["images"] == int(one.sum())
    assert row["dnn_accuracy"] == pytest.approx(float((logits[one].argmax(1) == 1).float().mean()))
    assert row["xnn_accuracy"] == pytest.approx(float((mixed[one].argmax(1) == 1).float().mean()))
    assert report["category"].tolist() == ["one", "three", "overall"]
