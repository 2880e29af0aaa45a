"""``explain``: the map bundle of a real (tiny) toybirds + toycnn run."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from xnaming.cli import main
from xnaming.errors import BAD_INPUT
from xnn_training import open_dataset
from xnn_training.bundle.io import (
    ACTIVATION_COLUMNS,
    EXTRA_IMAGE_COLUMNS,
    IMAGE_COLUMNS,
    BundleError,
    read_bundle,
)
from xnn_training.maps.excitation_backprop import excitation_backprop
from xnn_training.maps.explain import DISPLAY_SIZE, SplitModel, explain
from xnn_training.training.runs import load_xnn_run
from xnn_training.training.table_one import TABLE_ONE_COLUMNS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(toybirds_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    data, dnn, xnn = toybirds_run.data, toybirds_run.dnn, toybirds_run.xnn
    # A copy of the xNN whose first class has only negative head weights: its images have no
    # significant X-feature and must still be listed. The DNN is copied beside it, as the
    # xNN's config names its DNN run by a path relative to the xNN run.
    shutil.copytree(dnn, root / dnn.name)
    silent = root / "xnn_silent"
    shutil.copytree(xnn, silent)
    weights = load_file(str(silent / "weights.safetensors"))
    weights["head_weight"][0] = -weights["head_weight"][0].abs() - 0.1
    save_file(weights, str(silent / "weights.safetensors"))
    return data, dnn, xnn, silent


@pytest.fixture(scope="module")
def bundle(runs, tmp_path_factory):
    data, dnn, _, silent = runs
    return explain(dnn, silent, data, tmp_path_factory.mktemp("b") / "bundle", batch_size=4)


def test_bundle_follows_the_contract(runs, bundle):
    data, dnn, _, _silent = runs
    content = read_bundle(bundle)
    test_ids = [s.image_id for s in open_dataset(data, "test").samples]
    assert list(content.activations.columns) == list(ACTIVATION_COLUMNS)
    assert list(content.images.columns) == [*IMAGE_COLUMNS, *EXTRA_IMAGE_COLUMNS]
    assert list(content.images["image_id"]) == test_ids  # every image, none dropped
    images = content.images.set_index("image_id")
    # One row per significant activation: as many rows as each image's n_significant.
    per_image = content.activations.groupby("image_id").size()
    assert (per_image.reindex(images.index, fill_value=0) == images["n_significant"]).all()
    assert len(content.activations) > 0
    first_class = images[images["category"] == images["category"].iloc[0]]
    assert (first_class["n_significant"] == 0).all()  # listed with none
    assert (content.activations["activation_id"] == (
        content.activations["image_id"] + ":x" + content.activations["x_feature"].astype(str)
    )).all()  # fmt: skip
    for _image_id, rows in content.activations.groupby("image_id"):
        assert list(rows["rank"]) == list(range(1, len(rows) + 1))
        assert rows["share"].sum() >= 0.9 - 1e-6 or len(rows) == 3
        assert (rows["contribution"] > 0).all()
    first = content.activations.iloc[0]
    heat = np.load(bundle / first["map_path"])["map"]
    assert heat.dtype == np.float32
    assert heat.shape == (32, 32)
    from PIL import Image

    assert Image.open(bundle / first["overlay_path"]).size == (DISPLAY_SIZE, DISPLAY_SIZE)
    assert Image.open(bundle / first["image_path"]).size == (DISPLAY_SIZE, DISPLAY_SIZE)
    manifest = content.manifest
    assert manifest["layer"] == "features.10"
    assert manifest["threshold"] == 0.9
    assert manifest["explain"] == "true"
    assert set(manifest["versions"]) >= {"torch", "xnaming"}
    sha = hashlib.sha256((dnn / "weights.safetensors").read_bytes()).hexdigest()
    assert manifest["dnn_run"]["sha256"] == sha
    files = [p for p in bundle.rglob("*") if p.is_file() and p.name != "manifest.json"]
    assert set(manifest["files"]) == {p.relative_to(bundle).as_posix() for p in files}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((bundle / name).read_bytes()).hexdigest() == digest
    summary = (bundle / "summary.csv").read_text().splitlines()
    assert summary[0] == ",".join(TABLE_ONE_COLUMNS)
    assert summary[-1].startswith(f"overall,{len(test_ids)},{len(content.activations)},")


def test_shared_forward_maps_equal_the_plain_engine_on_the_full_model(runs, bundle):
    data, _dnn, _, silent = runs
    run = load_xnn_run(silent)
    content = read_bundle(bundle)
    dataset = open_dataset(data, "test", run.dnn.classes, size=run.dnn.image_size)
    index = {s.image_id: i for i, s in enumerate(dataset.samples)}

    class Features(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            graph = {run.dnn.feature_layer: "f"}
            self.graph = create_feature_extractor(run.dnn.model, graph)

        def forward(self, x):
            return torch.flatten(self.graph(x)["f"], 1)

    checked = 0
    for category, rows in content.activations.groupby("category"):
        c = run.classes.index(category)
        full = nn.Sequential(Features(), run.xnn.encoder_for_class(c)).eval()
        ids = list(dict.fromkeys(rows["image_id"]))
        images = torch.stack([dataset[index[i]]["image"] for i in ids])
        targets = [(ids.index(r.image_id), r.x_feature) for r in rows.itertuples()]
        expected = excitation_backprop(full, images, targets, "0.graph.features.10").maps
        for row, want in zip(rows.itertuples(), expected, strict=True):
            got = np.load(bundle / row.map_path)["map"]
            scale = float(want.abs().max()) or 1.0
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5 * scale)
            checked += 1
    assert checked == len(content.activations) > 0


def test_split_model_equals_the_dnn(runs):
    _, _dnn, xnn, _ = runs
    run = load_xnn_run(xnn)
    split = SplitModel(run.dnn.model, "features.10", run.dnn.feature_layer)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = run.dnn.extractor()(images)
        got = split(images)
    torch.testing.assert_close(got["logits"], expected["logits"])
    torch.testing.assert_close(got["features"], expected["features"])
    assert got["map"].shape == (3, 96, 4, 4)


def test_interrupted_run_resumes_without_redoing_images(runs, tmp_path, record_bundle_adds):
    data, dnn, xnn, _ = runs
    first = record_bundle_adds(interrupt_after=4)
    with pytest.raises(KeyboardInterrupt):
        explain(dnn, xnn, data, tmp_path / "b", batch_size=3)
    assert not read_bundle(tmp_path / "b", require_complete=False).manifest["complete"]
    added = record_bundle_adds()
    explain(dnn, xnn, data, tmp_path / "b", batch_size=3)
    content = read_bundle(tmp_path / "b")
    assert not set(first) & set(added)  # nothing redone
    assert sorted(first + added) == sorted(content.images["image_id"])
    reference = explain(dnn, xnn, data, tmp_path / "straight", batch_size=5)
    straight = read_bundle(reference)
    # Same rows as an uninterrupted run (numbers up to the batch size's rounding).
    numbers = ["contribution", "share"]
    assert content.activations.drop(columns=numbers).equals(
        straight.activations.drop(columns=numbers)
    )
    np.testing.assert_allclose(content.activations[numbers], straight.activations[numbers], 1e-5)


def test_runs_that_do_not_belong_together_are_refused(runs, tmp_path):
    data, dnn, xnn, _ = runs
    other = tmp_path / "other_dnn"
    shutil.copytree(dnn, other)
    weights = load_file(str(other / "weights.safetensors"))
    weights["classifier.0.weight"] += 0.01
    save_file(weights, str(other / "weights.safetensors"))
    with pytest.raises(ValueError, match=r"do not belong together.*sha256"):
        explain(other, xnn, data, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_unknown_layer_lists_the_valid_names(runs, tmp_path):
    data, dnn, xnn, _ = runs
    with pytest.raises(ValueError, match=r"features\.99.*Valid names:.*features\.10"):
        explain(dnn, xnn, data, tmp_path / "b", map_layer="features.99")


def test_a_different_bundle_is_not_overwritten(runs, bundle):
    data, dnn, _, silent = runs
    before = (bundle / "activations.csv").read_bytes()
    with pytest.raises(BundleError, match="threshold"):
        explain(dnn, silent, data, bundle, threshold=0.5)
    assert (bundle / "activations.csv").read_bytes() == before


def test_cli_writes_a_bundle_and_reports_bad_input(runs, tmp_path, capsys):
    data, dnn, xnn, _ = runs
    args = ["explain", "--dnn", str(dnn), "--xnn", str(xnn), "--data", str(data)]
    assert (
        main([*args, "--out", str(tmp_path / "b"), "--limit", "4", "--explain", "predicted"]) == 0
    )
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'b'}" in out
    assert "overall" in out
    content = read_bundle(tmp_path / "b")
    assert len(content.images) == 4
    assert (content.images["category"] == content.images["prediction"]).all()
    assert main([*args, "--out", str(tmp_path / "c"), "--layer", "nope"]) == BAD_INPUT
    assert "Valid names" in capsys.readouterr().err
