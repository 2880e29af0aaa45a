"""End to end on tiny toybirds: train, save, load back identically, resume, detect mismatches."""

import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import xnn_training.training.run_writer as run_writer
import xnn_training.training.runs as runs_module
from xnn_training import (
    load_dnn_run,
    load_xnn_run,
    open_dataset,
    train_dnn,
    train_xnn,
)
from xnn_training.training import fidelity

pytestmark = pytest.mark.slow


@pytest.fixture
def trained(toybirds_run):
    return toybirds_run.data, toybirds_run.dnn, toybirds_run.xnn


def test_runs_hold_the_documented_files(trained):
    data, dnn, xnn = trained
    config = json.loads((dnn / "config.json").read_text())
    assert config["format"] == "xnaming-dnn-run"
    assert config["feature_layer"] == "classifier.1"
    assert (dnn / config["data"]["path"]).resolve() == data.resolve()
    assert json.loads((dnn / "classes.json").read_text()) == config["data"]["classes"]
    assert set(pd.read_csv(dnn / "accuracy.csv")["category"]) >= {"overall"}
    xconfig = json.loads((xnn / "config.json").read_text())
    assert xconfig["dnn_run"]["sha256"] == runs_module.sha256(dnn / "weights.safetensors")
    assert xconfig["stuck_classes"] == {}  # three epochs: every class short of a fit, none worse
    report = pd.read_csv(xnn / "fidelity.csv")
    assert list(report.columns) == fidelity.COLUMNS
    assert report["category"].iloc[-1] == "overall"
    assert report["dnn_accuracy"].between(0, 1).all()
    assert report["xnn_accuracy"].between(0, 1).all()
    assert not (dnn / "checkpoint").exists()
    assert not (xnn / "checkpoint").exists()


def test_loaded_runs_give_identical_outputs(trained):
    data, dnn, xnn = trained
    run = load_xnn_run(xnn)
    model = run.model()
    images = torch.stack([open_dataset(data, "test", size=32)[i]["image"] for i in range(3)])
    out = model(images)
    assert out["x_features"].shape == (3, 3, 3)
    assert out["scores"].shape == (3, 3)
    again = load_xnn_run(xnn).model()(images)
    for key in ("logits", "features", "x_features", "scores"):
        assert torch.equal(out[key], again[key])
    torch.testing.assert_close(out["logits"], load_dnn_run(dnn).model(images))
    for c in range(3):  # the per-class encoder the maps stage uses
        w, b = run.xnn.head_for_class(c)
        x = run.xnn.encoder_for_class(c)(out["features"])
        torch.testing.assert_close(x, out["x_features"][:, c])
        torch.testing.assert_close(x @ w + b, out["scores"][:, c])


def test_xnn_trained_on_other_dnn_weights_is_detected(trained, tmp_path):
    _, dnn, xnn = trained
    import shutil

    other = tmp_path / "dnn"
    shutil.copytree(dnn, other)
    state = load_file(str(other / "weights.safetensors"))
    state["classifier.6.bias"] += 1
    from safetensors.torch import save_file

    save_file(state, str(other / "weights.safetensors"))
    with pytest.raises(ValueError, match="trained on DNN weights with sha256"):
        load_xnn_run(xnn, dnn=other)


def test_finished_run_is_kept_and_foreign_settings_are_refused(trained, capsys):
    data, dnn, _ = trained
    before = (dnn / "weights.safetensors").read_bytes()
    train_dnn(data, dnn, epochs=2, batch_size=8)
    assert "nothing to do" in capsys.readouterr().out
    assert (dnn / "weights.safetensors").read_bytes() == before
    with pytest.raises(FileExistsError, match="other settings"):
        train_dnn(data, dnn, epochs=3, batch_size=8)


def test_interrupted_training_resumes_to_the_same_result(trained, tmp_path, monkeypatch):
    data, dnn, _ = trained
    real_save = run_writer.save_checkpoint
    calls = {"n": 0}

    def save_then_interrupt(*args, **kwargs):
        real_save(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(run_writer, "save_checkpoint", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        train_dnn(data, tmp_path / "dnn", epochs=2, batch_size=8)
    assert (tmp_path / "dnn" / "checkpoint" / "state.json").is_file()
    train_dnn(data, tmp_path / "dnn", epochs=2, batch_size=8)  # resumes after epoch 1
    resumed = load_file(str(tmp_path / "dnn" / "weights.safetensors"))
    straight = load_file(str(dnn / "weights.safetensors"))
    for key, value in straight.items():
        torch.testing.assert_close(resumed[key], value)

    calls["n"] = 0
    kw = {"k": 3, "hidden": (8, 4), "epochs": 3, "batch_size": 8}  # default: every epoch
    with pytest.raises(KeyboardInterrupt):
        train_xnn(dnn, tmp_path / "xnn", **kw)
    train_xnn(dnn, tmp_path / "xnn", **kw)
    history = json.loads((tmp_path / "xnn" / "config.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_bad_xnn_classes_are_named(trained, tmp_path):
    _, dnn, _ = trained
    with pytest.raises(ValueError, match=r"'Dodo'.*not classes of the DNN run"):
        train_xnn(dnn, tmp_path / "x", classes=["Dodo"])
