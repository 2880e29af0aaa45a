"""Fixtures shared across the test packages.

- ``toybirds_bundle``: real toybirds files and a bundle whose maps sit on one part each.
- ``artifacts``: test-artifacts/, where the browser tests (Label Studio, report.html) keep
  their screenshots.
- ``browser``: Debian's headless chromium driven by Playwright (which never downloads a
  browser here). Without chromium the test is skipped with one line saying how to install it
  (`make test` installs it when run as root); under CI=true it fails.
- ``namer_cache`` (autouse, session): fitted namers are kept in a temporary folder
  (``XNAMING_CACHE``), never in the user's ~/.cache, and no test finds one an earlier run kept.
- ``one_torch_thread``: torch on one CPU thread while a module's fixtures train, for tests that
  check figures of a trained model (floating-point sums, hence the trained weights, differ with
  the number of threads: such a test must give the same verdict on a 2-core laptop and a
  64-core CI machine).

The Label Studio server is in ``tests/ls_backend/conftest.py``, the small trained toybirds run
in ``tests/xnn_training/conftest.py``: next to the tests that use them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.system_packages import require_command

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/ (git-ignored): screenshots of the browser tests."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session", autouse=True)
def namer_cache(tmp_path_factory) -> Iterator[Path]:
    """XNAMING_CACHE for the session (CLI subprocesses inherit it)."""
    folder = tmp_path_factory.mktemp("xnaming-cache")
    before = os.environ.get("XNAMING_CACHE")
    os.environ["XNAMING_CACHE"] = str(folder)
    yield folder
    if before is None:
        del os.environ["XNAMING_CACHE"]
    else:
        os.environ["XNAMING_CACHE"] = before


@pytest.fixture(scope="module")
def browser():
    """A headless chromium for one test module (Playwright's sync API, closed after it)."""
    chromium = require_command("chromium", needed_for="the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _bundle_with_maps_on(data, bundle, part_of_image):
    """A bundle whose map of each listed image covers exactly one part of its mask."""
    from PIL import Image

    from xnn_training.bundle.io import ActivationMap, BundleWriter, ExplainedImage

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
    from xnn_training.data.toybirds import PARTS, make_toybirds

    data = make_toybirds(tmp_path / "toybirds", classes=2, per_class=3, size=48, seed=1)
    images = pd.read_csv(data / "images.csv", dtype={"image_id": str})
    label = {name: number for number, name in PARTS.items()}
    on_part = {
        image_id: "eye" if i % 2 == 0 else "tail" for i, image_id in enumerate(images["image_id"])
    }
    _bundle_with_maps_on(data, tmp_path / "bundle", {i: label[p] for i, p in on_part.items()})
    wing_open = dict(zip(images["image_id"], images["wing"] == "open", strict=True))
    return data, tmp_path / "bundle", on_part, wing_open


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one CPU thread for the module's duration (see the module docstring)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
