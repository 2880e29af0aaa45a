"""A planted shortcut is found: the whole chain on a small toybirds, with and without the cue.

Real parts: toybirds with a cue planted in one class (train and test), a toy CNN and its xNNs
trained here, Excitation Backprop maps, five simulated annotators who see the cue as
background, and the analysis. With the cue, the classifier is right for the wrong reason: most
of the planted class's maps peak on the cue, and the decisions to distrust rank that class
first and flag it. Without the cue (the same data otherwise), no class is flagged.
"""

from __future__ import annotations

import json
import warnings

import pytest

from analysis import analyze, read_activations
from analysis.distrust import FLAG_LEVEL
from analysis.simulated_annotators import simulate_bundle
from xnn_training import make_toybirds, train_dnn, train_xnn
from xnn_training.explain import explain
from xnn_training.part_masks import cue_pointing_game

pytestmark = pytest.mark.slow

SMALL = {"classes": 3, "per_class": 60, "size": 48, "seed": 1}
EPOCHS = {"dnn": 12, "xnn": 60}
PLANTED = "2"  # not the first class: being ranked first must mean something


def _chain(root, shortcut):
    data = make_toybirds(root / "data", **SMALL, shortcut=shortcut)
    dnn = train_dnn(data, root / "dnn", epochs=EPOCHS["dnn"], seed=SMALL["seed"], overwrite=True)
    xnn = train_xnn(dnn, root / "xnn", epochs=EPOCHS["xnn"], seed=SMALL["seed"], overwrite=True)
    bundle = explain(dnn, xnn, data, root / "bundle")
    namings = simulate_bundle(bundle, data, annotators=5, seed=SMALL["seed"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = analyze(read_activations(bundle / "activations.csv"), namings)
    return data, bundle, results, dnn


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _chain(tmp_path_factory.mktemp("planted"), PLANTED)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return _chain(tmp_path_factory.mktemp("plain"), None)


def test_the_planted_class_is_distrusted_first(planted):
    data, bundle, results, _dnn = planted
    category = json.loads((data / "toybirds.json").read_text())["shortcut"]["category"]
    first = results.distrust.iloc[0]
    assert first["category"] == category, results.distrust.to_string()
    assert first["flagged"]
    assert results.distrust["flagged"].sum() == 1, results.distrust.to_string()
    # The classifier uses the cue: most of the planted class's maps peak on it.
    game = cue_pointing_game(bundle, data)
    assert set(game["category"]) == {category}
    assert game["on_cue"].mean() > 0.5, game["on_cue"].mean()


def test_without_the_cue_no_class_is_flagged(plain):
    _data, _bundle, results, _dnn = plain
    assert not results.distrust["flagged"].any(), results.distrust.to_string()
    assert results.distrust["distrusted_share"].max() < FLAG_LEVEL


def _accuracy(dnn_path, data, category) -> float:
    """The classifier's accuracy on the test images of ``category`` in ``data``."""
    import pandas as pd
    import torch
    from PIL import Image

    from xnn_training.datasets import image_transform
    from xnn_training.runs import load_dnn_run

    dnn = load_dnn_run(dnn_path)
    transform = image_transform(dnn.image_size)
    images = pd.read_csv(data / "images.csv", dtype=str, keep_default_na=False)
    rows = images[(images["split"] == "test") & (images["category"] == category)]
    batch = torch.stack([transform(Image.open(data / p).convert("RGB")) for p in rows.image_path])
    with torch.no_grad():
        predicted = dnn.model(batch).argmax(1)
    return float((predicted == dnn.classes.index(category)).float().mean())


def test_the_classifier_is_right_for_the_wrong_reason(planted, plain):
    data, _bundle, _results, dnn = planted
    plain_data = plain[0]  # the same images, without the cue
    category = json.loads((data / "toybirds.json").read_text())["shortcut"]["category"]
    with_cue, without = _accuracy(dnn, data, category), _accuracy(dnn, plain_data, category)
    assert with_cue > 0.9
    assert without < with_cue - 0.5, (with_cue, without)
