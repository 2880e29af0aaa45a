"""The overlay model reads the map over its image: a rule only the pixels show is learnt, and
each annotator keeps their own words and threshold, also one who judged only some of the maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.namers.overlay_model import fit_overlay_model, overlay_inputs
from xnn_training.maps.part_masks import heat_by_part

SIDE = 16


def _scenes(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Images with a red and a blue square at random places on grey, and one map each: a
    blob on one of the squares or on the background. The rule names the colour under the
    blob; where the squares are changes from image to image, so no descriptor tells it."""
    rng = np.random.default_rng(seed)
    images = np.full((count, 3, SIDE, SIDE), -0.5, dtype=np.float32)
    heat = np.zeros((count, SIDE, SIDE), dtype=np.float32)
    ys, xs = np.mgrid[0:SIDE, 0:SIDE]
    truth = []
    for n in range(count):
        corners = rng.choice([(1, 1), (1, 9), (9, 1), (9, 9)], size=3, replace=False)
        for (y, x), channel in zip(corners[:2], (0, 2), strict=True):
            images[n, channel, y : y + 6, x : x + 6] = 1.5
        on = rng.integers(3)  # 0: red, 1: blue, 2: background
        cy, cx = corners[on] + 3
        heat[n] = np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / 4.0)
        truth.append(["red", "blue", ""][on])
    return torch.from_numpy(images), torch.from_numpy(heat), truth


@pytest.mark.slow
def test_a_rule_only_the_pixels_show_is_learnt():
    images, heat, truth = _scenes(240, seed=0)
    descriptors = np.zeros((len(truth), 2), dtype=np.float32)
    model = fit_overlay_model(overlay_inputs(images, heat), descriptors, {"ann": truth},
                              members=1, epochs=25)  # fmt: skip
    test_images, test_heat, test_truth = _scenes(90, seed=1)
    probabilities = model.probabilities(
        "ann", overlay_inputs(test_images, test_heat), np.zeros((90, 2), dtype=np.float32)
    )
    said = [model.vocabularies["ann"][j] for j in probabilities.argmax(axis=1)]
    agree = np.mean([s == t for s, t in zip(said, test_truth, strict=True)])
    assert agree >= 0.9, f"the model agreed with the rule on {agree:.0%} of new maps"
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_each_annotator_keeps_their_words():
    images, heat, truth = _scenes(60, seed=2)
    theirs = [{"red": "crimson", "blue": "navy", "": ""}[t] for t in truth]
    partial = [t if n % 2 else None for n, t in enumerate(truth)]  # judged every other map
    model = fit_overlay_model(
        overlay_inputs(images, heat), np.zeros((60, 1), dtype=np.float32),
        {"ann": truth, "bob": theirs, "eve": partial}, members=1, epochs=1,
    )  # fmt: skip
    assert model.vocabularies == {
        "ann": ("", "blue", "red"), "bob": ("", "crimson", "navy"), "eve": ("", "blue", "red")
    }  # fmt: skip
    inputs = overlay_inputs(images[:4], heat[:4])
    assert model.probabilities("bob", inputs, np.zeros((4, 1), dtype=np.float32)).shape == (4, 3)


def test_inputs_of_the_wrong_shape_are_refused():
    images, heat, _ = _scenes(2, seed=3)
    with pytest.raises(ValueError, match=r"expected \(n, 3, H, W\) and \(n, H, W\)"):
        overlay_inputs(images, heat[:1])
    inputs = overlay_inputs(images, heat)
    assert inputs.shape == (2, 5, SIDE, SIDE)
    assert inputs[:, 3].amax(dim=(1, 2)).tolist() == [1.0, 1.0]  # heat over its maximum


def _spread_scenes(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """One red square per image, and a blob near it of random width and offset: the share of
    the hot spot on the square (as the simulated annotators measure a part's) runs from all to
    little."""
    rng = np.random.default_rng(seed)
    images = np.full((count, 3, SIDE, SIDE), -0.5, dtype=np.float32)
    heat = np.zeros((count, SIDE, SIDE), dtype=np.float32)
    masks = np.zeros((count, SIDE, SIDE), dtype=bool)
    ys, xs = np.mgrid[0:SIDE, 0:SIDE]
    for n in range(count):
        y, x = rng.integers(1, SIDE - 6, size=2)
        images[n, 0, y : y + 5, x : x + 5] = 1.5
        masks[n, y : y + 5, x : x + 5] = True
        cy, cx = np.array([y, x]) + 2 + rng.normal(0, 2.0, size=2)
        heat[n] = np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / rng.uniform(1.0, 30.0))
    share = [
        heat_by_part(h, m.astype(np.int64), {1: "square"})["square"]
        for h, m in zip(heat, masks, strict=True)
    ]
    return torch.from_numpy(images), torch.from_numpy(heat), np.array(share)


@pytest.mark.slow
def test_a_strict_annotator_who_judged_few_maps_keeps_their_threshold():
    """Both name a map "red" when enough of its hot spot lies on the square, the strict one at
    a higher share; the strict one judged a quarter of the maps. Each keeps their own
    threshold on new maps."""
    images, heat, share = _spread_scenes(400, seed=4)
    lenient = ["red" if s >= 0.4 else "" for s in share]
    strict = ["red" if s >= 0.7 else "" if n % 4 == 0 else None for n, s in enumerate(share)]
    model = fit_overlay_model(
        overlay_inputs(images, heat), np.zeros((400, 1), dtype=np.float32),
        {"lenient": lenient, "strict": strict}, members=1, epochs=40,
    )  # fmt: skip
    test_images, test_heat, test_share = _spread_scenes(200, seed=5)
    inputs, none = overlay_inputs(test_images, test_heat), np.zeros((200, 1), dtype=np.float32)
    named = {who: 1 - model.probabilities(who, inputs, none)[:, 0] for who in ("lenient", "strict")}
    for who, threshold in (("lenient", 0.4), ("strict", 0.7)):
        agree = np.mean((named[who] >= 0.5) == (test_share >= threshold))
        assert agree >= 0.8, f"{who}: named as their rule says on {agree:.0%} of new maps"
    assert named["strict"].mean() < named["lenient"].mean()
