"""Overlay PNGs: normalisation, resizing, blur, colours, files, bad input."""

import numpy as np
import pytest
import torch
from PIL import Image

from xnn_training.maps.overlay import display_map, overlay, save_overlay


def grey_image(width=96, height=64):
    return Image.fromarray(np.full((height, width, 3), 128, dtype=np.uint8))


def peaked_map(h=6, w=9, at=(1, 7)):
    values = np.zeros((h, w))
    values[at] = 5.0
    return values


@pytest.mark.parametrize("blur", [False, True])
def test_display_map_is_normalised_at_image_size_and_keeps_the_peak(blur):
    shown = display_map(peaked_map(), (96, 64), blur=blur)
    assert shown.shape == (64, 96)
    assert shown.dtype == np.float32
    assert shown.min() == 0.0
    assert shown.max() == pytest.approx(1.0)
    y, x = np.unravel_index(shown.argmax(), shown.shape)
    # Cell (1, 7) of a 6 x 9 map covers rows 10.7-21.3 and columns 74.7-85.3 of the image.
    assert 8 <= y <= 24
    assert 72 <= x <= 88


def test_blur_spreads_the_map_with_sigma_from_the_image_size():
    sharp = display_map(peaked_map(), (96, 64), blur=False)
    blurred = display_map(peaked_map(), (96, 64), blur=True)
    assert (blurred > 0.5).sum() > (sharp > 0.5).sum()
    # sigma = 0.02 * 96 = 1.92 pixels: a wider image blurs more in pixels.
    wide = display_map(peaked_map(), (192, 128), blur=True)
    assert (wide > 0.5).sum() > 4 * (blurred > 0.5).sum() * 0.9


def test_normalisation_makes_scale_and_offset_irrelevant():
    values = np.random.default_rng(0).random((7, 7))
    image = grey_image()
    a = np.asarray(overlay(image, values))
    b = np.asarray(overlay(image, torch.tensor(values * 3.0 + 1.0)))
    np.testing.assert_array_equal(a, b)


def test_overlay_is_red_at_the_peak_and_blue_elsewhere():
    result = overlay(grey_image(), peaked_map(), alpha=0.6)
    assert result.mode == "RGB"
    assert result.size == (96, 64)
    pixels = np.asarray(result).astype(int)
    hot = pixels[16, 80]
    cold = pixels[60, 5]
    assert hot[0] > hot[2] + 60  # red over blue where the map peaks
    assert cold[2] > cold[0] + 60  # blue elsewhere


def test_inactive_map_gives_a_plain_tint_without_nan():
    result = np.asarray(overlay(grey_image(), np.zeros((4, 4))))
    assert (result == result[0, 0]).all()


def test_alpha_zero_gives_the_image_back():
    image = np.random.default_rng(1).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(overlay(image, peaked_map(), alpha=0.0)), image)


def test_grayscale_image_and_saved_png(tmp_path):
    image = np.random.default_rng(2).integers(0, 256, (50, 70), dtype=np.uint8)
    path = save_overlay(tmp_path / "maps" / "img1" / "x0.png", image, peaked_map())
    with Image.open(path) as saved:
        assert saved.format == "PNG"
        assert saved.size == (70, 50)
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(overlay(image, peaked_map())))


@pytest.mark.parametrize(
    ("activation_map", "message"),
    [
        (np.zeros((2, 3, 4)), "2-D"),
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.zeros((0, 3)), "2-D"),
    ],
)
def test_bad_maps(activation_map, message):
    with pytest.raises(ValueError, match=message):
        overlay(grey_image(), activation_map)


def test_bad_image_alpha_and_size():
    with pytest.raises(ValueError, match="uint8 array"):
        overlay(np.zeros((10, 10, 3)), peaked_map())
    with pytest.raises(ValueError, match="alpha"):
        overlay(grey_image(), peaked_map(), alpha=1.5)
    with pytest.raises(ValueError, match="width, height"):
        display_map(peaked_map(), (0, 10))
