"""The planted shortcut of toybirds: a cue on the background of one class, recorded and masked."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from xnaming.cli import main
from xnn_training.bundle.io import ActivationMap, BundleWriter, ExplainedImage
from xnn_training.data.toybirds import CUE_COLOUR, make_toybirds, resolve_category, species_table
from xnn_training.maps.part_masks import cue_pointing_game, part_heat_table


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The same toybirds (3 classes, seed 2) without and with a cue planted in class 2."""
    root = tmp_path_factory.mktemp("shortcut")
    plain = make_toybirds(root / "plain", classes=3, per_class=4, size=48, seed=2)
    cued = make_toybirds(root / "cued", classes=3, per_class=4, size=48, seed=2, shortcut="2")
    return plain, cued


def _images(root):
    return pd.read_csv(root / "images.csv", dtype=str, keep_default_na=False)


def test_the_data_set_names_the_class_and_masks_every_cue(pair):
    plain, cued = pair
    planted = species_table(3)[1].name
    meta = json.loads((cued / "toybirds.json").read_text())
    assert meta["shortcut"]["category"] == planted
    assert json.loads((plain / "toybirds.json").read_text())["shortcut"] is None
    images = _images(cued)
    assert "cue_path" not in _images(plain).columns
    has_cue = images["cue_path"] != ""
    assert (has_cue == (images["category"] == planted)).all()  # all of that class, nothing else
    assert set(images.loc[has_cue, "split"]) == {"train", "test", "feedback"}
    for row in images[has_cue].itertuples():
        cue = np.asarray(Image.open(cued / row.cue_path)) > 0
        picture = np.asarray(Image.open(cued / row.image_path))
        mask = np.asarray(Image.open(cued / row.mask_path))
        assert 40 <= cue.sum() <= 81  # a square of 7 pixels at 48
        assert (picture[cue] == CUE_COLOUR).all()
        assert (mask[cue] == 0).all()  # background under the cue: annotators see no bird there
        # The rest of the image is the image without the cue.
        before = np.asarray(Image.open(plain / row.image_path))
        assert (picture[~cue] == before[~cue]).all()
        ys, xs = np.nonzero(cue)
        near_corner = min(ys.min(), 47 - ys.max()) <= 3 and min(xs.min(), 47 - xs.max()) <= 3
        assert near_corner


def test_other_classes_are_untouched(pair):
    plain, cued = pair
    images = _images(cued)
    others = images[images["cue_path"] == ""]
    for path in (*others["image_path"], *others["mask_path"]):
        assert (plain / path).read_bytes() == (cued / path).read_bytes()


def test_a_class_is_named_by_name_or_number():
    table = species_table(4)
    assert resolve_category(table, "3") == table[2].name
    assert resolve_category(table, "003") == table[2].name
    assert resolve_category(table, table[0].name) == table[0].name
    for bad in ("0", "5", "penguin", ""):
        with pytest.raises(ValueError, match="shortcut: no class"):
            resolve_category(table, bad)


def test_the_command_plants_a_shortcut_and_refuses_an_unknown_class(tmp_path, capsys):
    out = tmp_path / "tb"
    arguments = ["data", "toybirds", "--out", str(out), "--classes", "2", "--per-class", "2"]
    assert main([*arguments, "--size", "32", "--shortcut", "1"]) == 0
    assert "cues/" in capsys.readouterr().out
    assert json.loads((out / "toybirds.json").read_text())["shortcut"]["category"].startswith(
        "001."
    )
    assert main([*arguments, "--size", "32", "--shortcut", "9"]) != 0
    assert "shortcut: no class '9'" in capsys.readouterr().err


def _bundle_peaking_at(data, bundle, where):
    """A bundle with one map per cued image, peaking on its cue ("cue") or on its bird."""
    images = _images(data)
    writer = BundleWriter(bundle, {"data": str(data)})
    for row in images[images["cue_path"] != ""].itertuples():
        picture = Image.open(data / row.image_path)
        if where == "cue":
            target = np.asarray(Image.open(data / row.cue_path)) > 0
        else:
            target = np.asarray(Image.open(data / row.mask_path)) > 0
        ys, xs = np.nonzero(target)
        heat = np.zeros(target.shape, np.float32)
        heat[ys[len(ys) // 2], xs[len(xs) // 2]] = 1.0
        maps = [ActivationMap(0, 1.0, 1.0, 1, heat, picture)]
        writer.add(ExplainedImage(row.image_id, row.category, row.category, "", 1.0, picture, maps))
    writer.finish()
    return bundle


@pytest.mark.parametrize("where", ["cue", "bird"])
def test_the_pointing_game_on_the_cue(pair, tmp_path, where):
    _plain, cued = pair
    bundle = _bundle_peaking_at(cued, tmp_path / "bundle", where)
    game = cue_pointing_game(bundle, cued)
    assert len(game) == 4
    assert game["on_cue"].all() == (where == "cue")
    assert not game["on_cue"].any() or where == "cue"
    if where == "cue":
        assert (game["distance"] == 0).all()
        # The simulated annotators see the cue as background.
        heat = part_heat_table(bundle, cued)
        strongest = heat.sort_values("share").groupby("activation_id").tail(1)
        assert set(strongest["part"]) == {"background"}


def test_the_pointing_game_needs_a_planted_shortcut(pair, tmp_path):
    plain, _cued = pair
    with pytest.raises(ValueError, match="no planted shortcut"):
        cue_pointing_game(tmp_path, plain)
