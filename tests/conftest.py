"""Fixtures shared across the test packages.

- ``toybirds_bundle``: real toybirds files and a bundle whose maps sit on one part each.
- ``artifacts``: test-artifacts/, where the browser tests (Label Studio, report.html) keep
  their screenshots.

The Label Studio server is in ``tests/ls_backend/conftest.py``, the small trained toybirds run
in ``tests/xnn_training/conftest.py``: next to the tests that use them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/ (git-ignored): screenshots of the browser tests."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _bundle_with_maps_on(data, bundle, part_of_image):
    """A bundle whose map of each listed image covers exactly one part of its mask."""
    from PIL import Image

    from xnn_training.bundle import ActivationMap, BundleWriter, ExplainedImage

    images = pd.read_csv(data / "images.csv", dtype={"image_id": str}).set_index("image_id")
    writer = BundleWriter(bundle, {"data": str(data)})
    for image_id, label in part_of_image.items():
        row = images.loc[image_id]
        mask = np.asarray(Image.open(data / row["mask_path"]))
        picture = Image.open(data / row["image_path"])
        heat = (mask == label).astype(np.float32)
        activation = ActivationMap(0, 1.0, 1.0, 1, heat, picture)
        writer.add(
            ExplainedImage(
                image_id, row["category"], row["category"], "", 1.0, picture, [activation]
            )
        )
    writer.finish()


@pytest.fixture
def toybirds_bundle(tmp_path):
    """Real toybirds files, and a bundle whose maps sit on the eye or on the tail."""
    from xnn_training.toybirds import PARTS, make_toybirds

    data = make_toybirds(tmp_path / "toybirds", classes=2, per_class=3, size=48, seed=1)
    images = pd.read_csv(data / "images.csv", dtype={"image_id": str})
    label = {name: number for number, name in PARTS.items()}
    on_part = {
        image_id: "eye" if i % 2 == 0 else "tail" for i, image_id in enumerate(images["image_id"])
    }
    _bundle_with_maps_on(data, tmp_path / "bundle", {i: label[p] for i, p in on_part.items()})
    wing_open = dict(zip(images["image_id"], images["wing"] == "open", strict=True))
    return data, tmp_path / "bundle", on_part, wing_open
