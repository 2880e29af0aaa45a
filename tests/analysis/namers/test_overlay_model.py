"""The overlay model reads the map over its image: a rule only the pixels show is learnt, and
each annotator keeps their own words, also one who judged only some of the maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.namers.overlay_model import fit_overlay_model, overlay_inputs

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
