"""On a CUDA GPU: the same maps as on the CPU (docs/maps.md, "Devices"), training, ranks sharing
one GPU. Skipped on machines without CUDA (the CPU side of ``--device`` is test_devices.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from xnn_training import make_toybirds, train_dnn, train_xnn
from xnn_training.bundle.io import read_bundle
from xnn_training.maps.explain import explain
from xnn_training.training.runs import load_xnn_run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

# The tolerance docs/maps.md states for GPU against CPU (IEEE float32 on both).
MAP_TOLERANCE = 1e-3  # of the map's largest absolute value
NUMBER_RTOL, NUMBER_ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu")
    data = make_toybirds(root / "data", classes=3, per_class=30, size=32, seed=0)
    dnn = train_dnn(data, root / "dnn", epochs=2, batch_size=8, device="cpu")
    xnn = train_xnn(dnn, root / "xnn", k=3, hidden=(8, 4), epochs=3, batch_size=8, device="cpu")
    return root, data, dnn, xnn


def test_gpu_maps_equal_the_cpu_maps(runs):
    root, data, dnn, xnn = runs
    cpu = read_bundle(explain(dnn, xnn, data, root / "cpu", batch_size=8, device="cpu"))
    gpu = read_bundle(explain(dnn, xnn, data, root / "gpu", batch_size=8, device="cuda"))
    numbers = ["contribution", "share"]
    assert gpu.activations.drop(columns=numbers).equals(cpu.activations.drop(columns=numbers))
    np.testing.assert_allclose(
        gpu.activations[numbers], cpu.activations[numbers], rtol=NUMBER_RTOL, atol=NUMBER_ATOL
    )
    assert (gpu.images["prediction"] == cpu.images["prediction"]).all()
    np.testing.assert_allclose(
        gpu.images["score"].astype(float), cpu.images["score"].astype(float),
        rtol=NUMBER_RTOL, atol=NUMBER_ATOL,
    )  # fmt: skip
    assert len(cpu.activations) > 0
    for path in cpu.activations["map_path"]:
        want = np.load(root / "cpu" / path)["map"]
        got = np.load(root / "gpu" / path)["map"]
        np.testing.assert_allclose(got, want, rtol=0, atol=MAP_TOLERANCE * np.abs(want).max())
    # TF32 was off while explaining, and is back to torch's setting afterwards.
    assert torch.backends.cudnn.conv.fp32_precision != "ieee"


def test_training_on_the_gpu(runs):
    root, data, _, _ = runs
    dnn = train_dnn(data, root / "dnn-gpu", epochs=2, batch_size=8, device="cuda")
    xnn = train_xnn(dnn, root / "xnn-gpu", k=3, hidden=(8, 4), epochs=3, device="cuda")
    run = load_xnn_run(xnn)
    assert run.xnn.head_weight.device.type == "cpu"  # runs load on the CPU, wherever trained
    assert json.loads((dnn / "config.json").read_text())["test_accuracy"] >= 0
    assert (xnn / "fidelity.csv").is_file()


def test_two_workers_sharing_one_gpu(runs):
    root, data, dnn, xnn = runs
    one = read_bundle(explain(dnn, xnn, data, root / "gpu-one", batch_size=4, device="cuda"))
    two = read_bundle(
        explain(dnn, xnn, data, root / "gpu-two", batch_size=4, device="cuda", workers=2)
    )
    assert two.activations["activation_id"].tolist() == one.activations["activation_id"].tolist()
    assert two.images["image_id"].tolist() == one.images["image_id"].tolist()
