"""``xnaming train dnn --from --feedback --bundle``: refusals in one line, an ordinary DNN run
written deterministically, resumed after an interruption, and the controls' regions."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from xnaming.cli import main
from xnn_training.training import correct as correct_module
from xnn_training.training.correct import _moved_at_random, _shuffled_namings, correct_dnn
from xnn_training.training.feedback import FeedbackRegions, feedback_regions


@pytest.fixture(scope="module")
def feedback_bundle(toybirds_run, tmp_path_factory):
    from xnn_training.maps.explain import explain

    root = tmp_path_factory.mktemp("correct")
    bundle = explain(
        toybirds_run.dnn, toybirds_run.xnn, toybirds_run.data, root / "fb",
        split="feedback", embedding_layers=(),
    )  # fmt: skip
    return bundle


def _namings(bundle, tmp_path, status_of):
    activations = pd.read_csv(bundle / "activations.csv", dtype=str)
    rows = [
        {"annotator": "ann", "category": a.category, "activation_id": a.activation_id,
         "concept": "wing" if status_of(k) == "named" else "", "status": status_of(k)}
        for k, a in enumerate(activations.itertuples())
    ]  # fmt: skip
    path = tmp_path / "namings.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _args(run, bundle, namings, out, *extra):
    return ["train", "dnn", "--from", str(run.dnn), "--feedback", str(namings),
            "--bundle", str(bundle), "--data", str(run.data), "--out", str(out),
            "--epochs", "1", "--device", "cpu", *extra]  # fmt: skip


def test_refusals_say_why_in_one_line(toybirds_run, feedback_bundle, tmp_path, capsys):
    named = _namings(feedback_bundle, tmp_path, lambda k: "named")
    assert main(_args(toybirds_run, feedback_bundle, named, tmp_path / "out")) == 3
    assert "nothing to correct" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

    foreign = pd.read_csv(named)
    foreign.loc[0, "activation_id"] = "999_9999:x0"
    foreign.to_csv(tmp_path / "foreign.csv", index=False)
    assert main(_args(toybirds_run, feedback_bundle, tmp_path / "foreign.csv", tmp_path / "o")) == 3
    assert "not in the feedback bundle" in capsys.readouterr().err

    test_bundle = tmp_path / "test-bundle"
    shutil.copytree(feedback_bundle, test_bundle)
    manifest = json.loads((test_bundle / "manifest.json").read_text())
    manifest["split"] = "test"
    (test_bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="not feedback"):
        feedback_regions(named, test_bundle, dnn_weights=toybirds_run.dnn / "weights.safetensors",
                         size=32)  # fmt: skip

    other = tmp_path / "other-dnn"
    shutil.copytree(toybirds_run.dnn, other)
    tensors = load_file(str(other / "weights.safetensors"))
    first = sorted(tensors)[0]
    tensors[first] = tensors[first] + 1  # another classifier, another fingerprint
    save_file(tensors, str(other / "weights.safetensors"))
    args = _args(toybirds_run, feedback_bundle, named, tmp_path / "o2")
    args[args.index("--from") + 1] = str(other)
    assert main(args) == 3
    err = capsys.readouterr().err
    assert "another classifier" in err
    assert err.count("(its weights ") == 1
    assert "(its weights " in err
    assert len(err.strip().splitlines()) == 1


def test_a_correction_is_an_ordinary_deterministic_resumable_run(
    toybirds_run, feedback_bundle, tmp_path, monkeypatch
):
    namings = _namings(feedback_bundle, tmp_path, lambda k: "discarded")
    settings = {"namings": namings, "bundle": feedback_bundle, "epochs": 2, "batch_size": 8,
                "device": "cpu"}  # fmt: skip
    first = correct_dnn(toybirds_run.dnn, tmp_path / "a", **settings)
    again = correct_dnn(toybirds_run.dnn, tmp_path / "b", **settings)
    a, b = (
        load_file(str(first / "weights.safetensors")),
        load_file(str(again / "weights.safetensors")),
    )
    assert all((a[k] == b[k]).all() for k in a)
    config = json.loads((first / "config.json").read_text())
    assert config["format"] == "xnaming-dnn-run"
    assert config["correction"]["method"] == "counterexamples"
    assert list(pd.read_csv(first / "accuracy.csv").columns[:3]) == [
        "category",
        "images",
        "accuracy",
    ]

    calls = {"n": 0}
    original = correct_module._epoch

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(correct_module, "_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        correct_dnn(toybirds_run.dnn, tmp_path / "c", **settings)
    monkeypatch.setattr(correct_module, "_epoch", original)
    resumed = correct_dnn(toybirds_run.dnn, tmp_path / "c", **settings)
    c = load_file(str(resumed / "weights.safetensors"))
    assert all((a[k] == c[k]).all() for k in a)

    rrr = correct_dnn(toybirds_run.dnn, tmp_path / "rrr", method="rrr", **settings)
    assert json.loads((rrr / "config.json").read_text())["correction"]["method"] == "rrr"


def test_the_random_control_moves_every_region_and_keeps_its_size():
    rng = np.random.default_rng(0)
    regions = {
        f"{i:03d}_0000": (None, torch.from_numpy(rng.random((1, 16, 16)) > 0.8), i % 2)
        for i in range(4)
    }
    moved = _moved_at_random(regions, seed=0)
    assert sorted(moved) == sorted(regions)
    for key, (_, mask, label) in regions.items():
        assert moved[key][1].sum() == mask.sum()
        assert moved[key][2] == label
        assert not torch.equal(moved[key][1], mask)


def test_the_shuffled_control_hands_the_verdicts_to_other_maps(tmp_path):
    table = pd.DataFrame({
        "annotator": "ann", "category": "c",
        "activation_id": [f"{i:03d}_0000:x0" for i in range(40)],
        "concept": ["wing" if i % 3 else "" for i in range(40)],
        "status": ["named" if i % 3 else "discarded" for i in range(40)],
    })  # fmt: skip
    table.to_csv(tmp_path / "n.csv", index=False)
    shuffled = _shuffled_namings(tmp_path / "n.csv", seed=0)
    assert list(shuffled["activation_id"]) == list(table["activation_id"])
    assert sorted(shuffled["status"]) == sorted(table["status"])
    assert (shuffled["status"] != table["status"]).any()
    named = shuffled["status"] == "named"
    assert (shuffled.loc[named, "concept"] == "wing").all()  # a verdict moves whole


def test_without_a_flagged_category_the_classifier_is_kept(
    toybirds_run, feedback_bundle, tmp_path, monkeypatch, capsys
):
    real = correct_module.feedback_regions

    def nothing_flagged(*args, **kwargs):
        found = real(*args, **kwargs)
        return FeedbackRegions(found.size, found.rejected, found.named, found.maps,
                               {c: 0.25 for c in found.distrusted})  # fmt: skip

    monkeypatch.setattr(correct_module, "feedback_regions", nothing_flagged)
    namings = _namings(feedback_bundle, tmp_path, lambda k: "discarded")
    out = correct_dnn(toybirds_run.dnn, tmp_path / "kept", namings=namings,
                      bundle=feedback_bundle, epochs=2, device="cpu")  # fmt: skip
    assert "kept as it is" in capsys.readouterr().out
    before = load_file(str(toybirds_run.dnn / "weights.safetensors"))
    after = load_file(str(out / "weights.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert json.loads((out / "config.json").read_text())["correction"]["flagged"] == []


def test_flagged_classes_get_regions_on_their_training_images(
    toybirds_run, feedback_bundle, tmp_path
):
    namings = _namings(feedback_bundle, tmp_path, lambda k: "discarded")
    out = correct_dnn(toybirds_run.dnn, tmp_path / "all", namings=namings,
                      bundle=feedback_bundle, epochs=1, device="cpu")  # fmt: skip
    correction = json.loads((out / "config.json").read_text())["correction"]
    assert correction["flagged"], "every map discarded: every category with maps is flagged"
    assert set(correction["rejected_features"]) == set(correction["flagged"])
    feedback_images = len(pd.read_csv(feedback_bundle / "images.csv"))
    assert correction["rejected_regions"] > feedback_images  # carried to training images


def test_regions_covering_most_of_their_images_are_called_too_coarse():
    def regions(share: float) -> dict[str, tuple]:
        mask = torch.zeros(1, 10, 10, dtype=torch.bool)
        mask.view(-1)[: round(100 * share)] = True
        return {"a": (None, mask, 0), "b": (None, mask, 1)}

    assert correct_module._coarse_regions_warning(regions(0.1), "features.10") is None
    line = correct_module._coarse_regions_warning(regions(0.6), "features.10")
    assert "60%" in line
    assert "features.10" in line
    assert "\n" not in line
    assert correct_module._coarse_regions_warning({}, "features.10") is None
