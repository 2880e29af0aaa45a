"""Maps against part masks on a real toybirds bundle: the pointing game (where maps peak)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from xnn_training import make_toybirds
from xnn_training.bundle.io import read_bundle
from xnn_training.data.datasets import open_dataset
from xnn_training.maps.explain import explain
from xnn_training.maps.part_masks import pointing_game, pointing_summary

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(toybirds_run, tmp_path_factory):
    run = toybirds_run
    return explain(run.dnn, run.xnn, run.data, tmp_path_factory.mktemp("pointing") / "b"), run.data


def test_every_map_is_looked_up_in_its_mask(bundle):
    path, data = bundle
    game = pointing_game(path, data)
    content = read_bundle(path)
    assert list(game["activation_id"]) == list(content.activations["activation_id"])
    parts = set(json.loads((data / "toybirds.json").read_text())["parts"].values())
    assert set(game["part"]) <= parts
    assert (game["inside"] == (game["part"] != "background")).all()
    summary = pointing_summary(game).set_index("part")
    assert summary.loc["bird", "fraction"] == pytest.approx(game["inside"].mean())
    assert summary.drop(index="bird")["maps"].sum() == len(game)


@pytest.mark.parametrize("part", ["eye", "background", "tail"])
def test_a_map_peaking_on_a_known_part_is_found_there(bundle, tmp_path, part):
    path, data = bundle
    # A copy of the bundle whose first map peaks on one pixel of the chosen part.
    copy = tmp_path / "bundle"
    shutil.copytree(path, copy)
    first = read_bundle(copy).activations.iloc[0]
    dataset = open_dataset(data, "test")
    index = [s.image_id for s in dataset.samples].index(first["image_id"])
    mask = dataset.part_mask(index)
    label = {v: int(k) for k, v in dataset.part_names.items()}[part]
    ys, xs = np.nonzero(mask == label)
    if not len(ys):
        pytest.skip(f"{part} not visible in {first['image_id']}")
    heat = np.zeros(mask.shape, np.float32)
    heat[ys[len(ys) // 2], xs[len(xs) // 2]] = 1.0
    np.savez_compressed(copy / first["map_path"], map=heat)
    game = pointing_game(copy, data)
    assert game.iloc[0]["part"] == part
    assert game.iloc[0]["inside"] == (part != "background")


def test_data_without_the_bundles_images_is_refused(bundle, tmp_path):
    path, _ = bundle
    other = make_toybirds(tmp_path / "other", classes=2, per_class=3, size=32, seed=5)
    with pytest.raises(ValueError, match="not in"):
        pointing_game(path, other)
