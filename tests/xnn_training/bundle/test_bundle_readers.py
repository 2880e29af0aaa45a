"""Every stage reads bundles through xnn_training.bundle.io: publish, analysis, simulate, tests."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import read_activations
from ls_backend.manager.publish import load_bundle
from tests.ls_backend.bundle_factory import make_bundle, read_parts
from xnn_training.bundle.io import BundleError, BundleWriter, read_bundle, read_table


def test_the_hand_made_bundle_is_a_complete_bundle(tmp_path):
    bundle = read_bundle(make_bundle(tmp_path / "b"))
    assert bundle.manifest["complete"] is True
    assert "parts.csv" in bundle.manifest["files"]
    parts = read_parts(tmp_path / "b")
    assert sorted(parts["activation_id"]) == sorted(bundle.activations["activation_id"])
    assert set(parts["part"]) == {"head", "wing", "tail", "leaves"}


def test_publish_and_analysis_read_the_same_activations(tmp_path):
    root = make_bundle(tmp_path / "b")
    published = load_bundle(root)
    assert list(published["activation_id"]) == list(read_bundle(root).activations["activation_id"])
    assert {"heat_x", "heat_y", "hot_area"} <= set(published.columns)
    from_dir, from_csv = read_activations(root), read_activations(root / "activations.csv")
    pd.testing.assert_frame_equal(from_dir, from_csv)


def test_a_folder_that_is_not_a_bundle_is_refused_by_every_reader(tmp_path):
    (tmp_path / "photos").mkdir()
    for read in (read_bundle, load_bundle, read_activations):
        with pytest.raises(BundleError, match=r"is not a map bundle: manifest\.json is missing"):
            read(tmp_path / "photos")
    (tmp_path / "photos" / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_bundle(tmp_path / "photos")


def test_the_data_set_is_resolved_against_the_bundle_not_the_working_directory(
    tmp_path, monkeypatch
):
    writer = BundleWriter(tmp_path / "runs" / "bundle", {"data": "../toybirds"})
    root = writer.finish()
    monkeypatch.chdir(tmp_path)
    assert read_bundle(root).data.resolve() == (tmp_path / "runs" / "toybirds").resolve()
    bare = BundleWriter(tmp_path / "bare", {"layer": "x"}).finish()
    assert read_bundle(bare).data is None


def test_read_table_keeps_identifiers_as_strings(tmp_path):
    path = tmp_path / "activations.csv"
    path.write_text("activation_id,image_id,category,x_feature\n007:x1,007,12,1\n")
    row = read_table(path).iloc[0]
    assert (row["activation_id"], row["image_id"], row["category"]) == ("007:x1", "007", "12")
    assert row["x_feature"] == 1
