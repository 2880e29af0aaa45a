"""The map bundle: written incrementally, resumable, refuses to overwrite another bundle."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from xnn_training.bundle.io import (
    ACTIVATION_COLUMNS,
    EXTRA_IMAGE_COLUMNS,
    IMAGE_COLUMNS,
    ActivationMap,
    BundleError,
    BundleWriter,
    ExplainedImage,
    activation_id,
    read_bundle,
)

IDENTITY = {"dnn_run": "runs/dnn", "xnn_run": "runs/xnn", "layer": "features.9", "threshold": 0.9}


def _explained(image_id: str, n_maps: int, category: str = "c1") -> ExplainedImage:
    rng = np.random.default_rng(abs(hash(image_id)) % 2**32)
    image = Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    maps = [
        ActivationMap(
            x_feature=k,
            contribution=float(n_maps - k),
            share=(n_maps - k) / sum(range(1, n_maps + 1)),
            rank=k + 1,
            heat=rng.random((8, 8)).astype(np.float32),
            overlay=image,
        )
        for k in range(n_maps)
    ]
    return ExplainedImage(image_id, category, category, category, 3.5, image, maps)


def test_round_trip(tmp_path):
    writer = BundleWriter(tmp_path / "b", IDENTITY)
    first, second, empty = _explained("1", 2), _explained("2", 1, "c2"), _explained("3", 0)
    for explained in (first, second, empty):
        writer.add(explained)
    writer.finish(pd.DataFrame({"category": ["c1", "c2"], "images": [2, 1]}))

    bundle = read_bundle(tmp_path / "b")
    assert list(bundle.activations.columns) == list(ACTIVATION_COLUMNS)
    assert list(bundle.images.columns) == [*IMAGE_COLUMNS, *EXTRA_IMAGE_COLUMNS]
    assert list(bundle.activations["activation_id"]) == ["1:x0", "1:x1", "2:x0"]
    assert list(bundle.images["n_significant"]) == [2, 1, 0]  # image 3 listed, not dropped
    row = bundle.activations.iloc[1]
    stored = np.load(tmp_path / "b" / row["map_path"])["map"]
    np.testing.assert_array_equal(stored, first.activations[1].heat)
    assert (tmp_path / "b" / row["overlay_path"]).is_file()
    assert bundle.manifest["complete"] is True
    for relative, digest in bundle.manifest["files"].items():
        assert hashlib.sha256((tmp_path / "b" / relative).read_bytes()).hexdigest() == digest
    assert "activations.csv" in bundle.manifest["files"]
    assert (tmp_path / "b" / "summary.csv").is_file()


def test_resume_skips_finished_images_and_drops_a_half_written_one(tmp_path):
    root = tmp_path / "b"
    writer = BundleWriter(root, IDENTITY)
    writer.add(_explained("1", 2))
    # Simulate a crash between the activation rows and the images.csv row of image 2.
    with (root / "activations.csv").open("a") as file:
        file.write("2:x0,2,c1,0,1.0,1.0,1,maps/2/x0.npz,overlays/2/x0.png,images/2.png\n")

    resumed = BundleWriter(root, IDENTITY)
    assert resumed.done == {"1"}
    resumed.add(_explained("2", 1))
    resumed.finish()
    bundle = read_bundle(root)
    assert list(bundle.activations["activation_id"]) == ["1:x0", "1:x1", "2:x0"]
    assert list(bundle.images["image_id"]) == ["1", "2"]


def test_unfinished_bundle_is_refused_by_readers(tmp_path):
    writer = BundleWriter(tmp_path / "b", IDENTITY)
    writer.add(_explained("1", 1))
    with pytest.raises(BundleError, match="interrupted"):
        read_bundle(tmp_path / "b")
    assert len(read_bundle(tmp_path / "b", require_complete=False).activations) == 1


def test_another_bundle_is_never_overwritten(tmp_path):
    BundleWriter(tmp_path / "b", IDENTITY).finish()
    with pytest.raises(BundleError, match=r"layer: bundle has 'features.9', this run 'features.5'"):
        BundleWriter(tmp_path / "b", {**IDENTITY, "layer": "features.5"})


def test_a_directory_that_is_not_a_bundle_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="not empty"):
        BundleWriter(tmp_path, IDENTITY)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_adding_an_image_twice_is_an_error(tmp_path):
    writer = BundleWriter(tmp_path / "b", IDENTITY)
    writer.add(_explained("1", 1))
    with pytest.raises(BundleError, match="already"):
        writer.add(_explained("1", 1))


def test_awkward_image_ids_get_distinct_safe_paths(tmp_path):
    writer = BundleWriter(tmp_path / "b", IDENTITY)
    for image_id in ("birds/a b.jpg", "birds_a_b.jpg", "007"):
        writer.add(_explained(image_id, 1))
    writer.finish()
    bundle = read_bundle(tmp_path / "b")
    assert len(set(bundle.images["image_path"])) == 3
    assert bundle.images["image_id"].tolist() == ["birds/a b.jpg", "birds_a_b.jpg", "007"]
    assert activation_id("007", 3) == "007:x3"
    assert all("/" not in path.split("/", 1)[1] for path in bundle.images["image_path"])


def test_reader_names_what_is_wrong(tmp_path):
    writer = BundleWriter(tmp_path / "b", IDENTITY)
    writer.add(_explained("1", 1))
    writer.finish()
    activations = pd.read_csv(tmp_path / "b" / "activations.csv")
    activations.drop(columns=["x_feature"]).to_csv(tmp_path / "b" / "activations.csv", index=False)
    with pytest.raises(BundleError, match=r"lacks the columns \['x_feature'\]"):
        read_bundle(tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["format"] == "xnaming-bundle"
    with pytest.raises(BundleError, match=r"manifest\.json is missing"):
        read_bundle(tmp_path / "nothing")
