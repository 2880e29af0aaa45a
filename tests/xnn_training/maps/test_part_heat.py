"""Maps against part masks, by hand and on real toybirds files: the heat each part holds."""

from __future__ import annotations

import numpy as np
import pytest

from xnn_training.maps.part_masks import BACKGROUND, heat_by_part, part_heat_table


def test_heat_by_part_by_hand():
    mask = np.array([[0, 1], [2, 2]])
    heat = np.array([[1.0, 3.0], [2.0, 2.0]])
    shares = heat_by_part(heat, mask, {1: "eye", 2: "wing"}, hot=0)
    assert shares == pytest.approx({"eye": 3 / 8, "wing": 4 / 8, BACKGROUND: 1 / 8})
    # Only the hot spot counts: pixels >= 0.6 * 3 = 1.8 are the eye (3) and the wing (2, 2).
    hot = heat_by_part(heat, mask, {1: "eye", 2: "wing"}, hot=0.6)
    assert hot == pytest.approx({"eye": 3 / 7, "wing": 4 / 7, BACKGROUND: 0.0})
    assert heat_by_part(heat, mask, {1: "eye", 2: "wing"})["eye"] == pytest.approx(1.0)
    assert heat_by_part(np.zeros((2, 2)), mask, {1: "eye"}) == {"eye": 0.0, BACKGROUND: 0.0}


def test_heat_by_part_rejects_bad_maps():
    with pytest.raises(ValueError, match="shape"):
        heat_by_part(np.ones((2, 3)), np.zeros((2, 2), int), {})
    with pytest.raises(ValueError, match="non-negative"):
        heat_by_part(-np.ones((2, 2)), np.zeros((2, 2), int), {})
    with pytest.raises(ValueError, match="hot must be"):
        heat_by_part(np.ones((2, 2)), np.zeros((2, 2), int), {}, hot=1.0)


def test_part_heat_table_on_real_toybirds(toybirds_bundle):
    data, bundle, on_part, wing_open = toybirds_bundle
    table = part_heat_table(bundle, data)
    assert len(table) == len(on_part) * 10  # nine bird parts and the background
    for activation, parts in table.groupby("activation_id"):
        image_id = activation.removesuffix(":x0")
        shares = dict(zip(parts["part"], parts["share"], strict=True))
        assert shares[on_part[image_id]] == pytest.approx(1.0)
        assert sum(shares.values()) == pytest.approx(1.0)
        assert set(parts["wing_open"]) == {wing_open[image_id]}


def test_part_heat_needs_toybirds(tmp_path):
    with pytest.raises(ValueError, match=r"toybirds\.json is missing"):
        part_heat_table(tmp_path / "bundle", tmp_path)
