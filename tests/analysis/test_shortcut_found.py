"""A planted shortcut is found: the whole chain on a small toybirds, with and without the cue.

Real parts: toybirds with a cue planted in one class (train and test), a toy CNN and its xNNs
trained here, Excitation Backprop maps, five simulated annotators who see the cue as
background, and the analysis. With the cue, the classifier is right for the wrong reason: most
of the planted class's maps peak on the cue, and the decisions to distrust rank that class
first and flag it, well ahead of the next. Without the cue (the same data otherwise) the
classifier's maps fall on the birds, and no class is flagged.

The measure flags any class whose decisions rest on the background, cue or not: on data seed 2
of this configuration the plain classifier's maps of one class peak on the background (38 of
60) and that class is flagged (87%). So the test without the cue first checks that the maps
fall on the birds (the premise), then that nothing is flagged.
"""

from __future__ import annotations

import json
import warnings

import pytest

from analysis import analyze, read_activations
from analysis.measures.distrust import FLAG_LEVEL
from analysis.namers.simulated_annotators import simulate_bundle
from xnn_training import make_toybirds, train_dnn, train_xnn
from xnn_training.maps.explain import explain
from xnn_training.maps.part_masks import cue_pointing_game, pointing_game

pytestmark = pytest.mark.slow

# The small run of docs/analysis.md's table. With fewer images or epochs the classifier is
# undertrained and its maps fall on the background in most classes, cue or not.
SMALL = {"classes": 4, "per_class": 90, "size": 64, "seed": 0}
EPOCHS = {"dnn": 15, "xnn": 80}
PLANTED = "3"  # the demo's choice (the middle class), not the first: ranking first means something


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
def planted(tmp_path_factory, one_torch_thread):
    return _chain(tmp_path_factory.mktemp("planted"), PLANTED)


@pytest.fixture(scope="module")
def plain(tmp_path_factory, one_torch_thread):
    return _chain(tmp_path_factory.mktemp("plain"), None)


def test_the_planted_class_is_distrusted_first(planted):
    data, bundle, results, _dnn = planted
    category = json.loads((data / "toybirds.json").read_text())["shortcut"]["category"]
    first = results.distrust.iloc[0]
    assert first["category"] == category, results.distrust.to_string()
    assert first["flagged"]
    second = results.distrust.iloc[1]  # well ahead of the next class
    assert first["distrusted_share"] > second["distrusted_share"] + 0.25, results.distrust
    # The classifier uses the cue: most of the planted class's maps peak on it.
    game = cue_pointing_game(bundle, data)
    assert set(game["category"]) == {category}
    assert game["on_cue"].mean() > 0.5, game["on_cue"].mean()


def test_without_the_cue_no_class_is_flagged(plain):
    data, bundle, results, _dnn = plain
    # The premise: in every class most maps peak on the bird.
    on_bird = pointing_game(bundle, data).groupby("category")["inside"].mean()
    assert (on_bird > 0.5).all(), on_bird
    assert not results.distrust["flagged"].any(), results.distrust.to_string()
    assert results.distrust["distrusted_share"].max() < FLAG_LEVEL


def _accuracy(dnn_path, data, category) -> float:
    """The classifier's accuracy on the test images of ``category`` in ``data``."""
    import pandas as pd
    import torch
    from PIL import Image

    from xnn_training.data.datasets import image_transform
    from xnn_training.training.runs import load_dnn_run

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
    # The cue carries much of the decision: without it a good part of the class is lost
    # (measured 100% -> 63% here; 100% -> 0% at the demo's scale, docs/analysis.md).
    assert without < with_cue - 0.25, (with_cue, without)
