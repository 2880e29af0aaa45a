"""RunWriter on a one-layer model: fresh, resume, finish, refusals; no data set needed."""

import json

import pytest
import torch
from safetensors.torch import load_file

from xnn_training.training.run_writer import RunWriter
from xnn_training.training.runs import DNN_FORMAT

IDENTITY = {"epochs": 3, "seed": 0, "classes": ["a", "b"], "data": "/nowhere"}


def _model_and_optimizer(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(2, 2)
    return model, torch.optim.Adam(model.parameters(), lr=1e-2)


def _step(model, optimizer):
    loss = model(torch.ones(1, 2)).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def test_a_checkpoint_resumes_model_optimiser_and_history(tmp_path, capsys):
    out = tmp_path / "run"
    writer = RunWriter(out, IDENTITY, run_format=DNN_FORMAT)
    assert not writer.finished
    model, optimizer = _model_and_optimizer()
    assert writer.resume(model, optimizer) == 0
    _step(model, optimizer)
    writer.history.append({"epoch": 1})
    writer.checkpoint()

    again = RunWriter(out, IDENTITY, run_format=DNN_FORMAT)
    other, other_optimizer = _model_and_optimizer(seed=1)
    assert again.resume(other, other_optimizer) == 1
    assert "resuming" in capsys.readouterr().out
    assert again.history == [{"epoch": 1}]
    for key, value in model.state_dict().items():
        assert torch.equal(other.state_dict()[key], value)
    _step(model, optimizer)
    _step(other, other_optimizer)  # the optimiser's moments came back too
    for key, value in model.state_dict().items():
        assert torch.equal(other.state_dict()[key], value)


def test_finish_writes_the_run_and_removes_checkpoint_and_scratch(tmp_path, capsys):
    out = tmp_path / "run"
    writer = RunWriter(out, IDENTITY, run_format=DNN_FORMAT)
    model, optimizer = _model_and_optimizer()
    writer.resume(model, optimizer)
    scratch = writer.scratch("features.safetensors")
    scratch.write_bytes(b"x")
    writer.history.append({"epoch": 1})
    writer.checkpoint()
    writer.finish(model, {"arch": "linear"}, ["a", "b"], results={"test_accuracy": 0.5})
    assert sorted(path.name for path in out.iterdir()) == [
        "classes.json",
        "config.json",
        "weights.safetensors",
    ]
    config = json.loads((out / "config.json").read_text())
    assert list(config)[:4] == ["format", "version", "created", "arch"]
    assert config["format"] == DNN_FORMAT
    assert config["training"] == {"epochs": 3, "seed": 0}
    assert config["training_key"] == IDENTITY
    assert list(config)[-4:] == ["history", "test_accuracy", "versions", "training_key"]
    assert torch.equal(load_file(str(out / "weights.safetensors"))["bias"], model.bias)

    assert RunWriter(out, IDENTITY, run_format=DNN_FORMAT).finished
    assert "nothing to do" in capsys.readouterr().out


def test_other_settings_and_foreign_directories_are_refused(tmp_path):
    out = tmp_path / "run"
    writer = RunWriter(out, IDENTITY, run_format=DNN_FORMAT)
    writer.resume(*_model_and_optimizer())
    writer.checkpoint()
    with pytest.raises(FileExistsError, match="other settings"):
        RunWriter(out, {**IDENTITY, "seed": 1}, run_format=DNN_FORMAT)
    fresh = RunWriter(out, {**IDENTITY, "seed": 1}, run_format=DNN_FORMAT, overwrite=True)
    assert not fresh.finished
    assert not out.exists()  # overwrite cleared it; the first checkpoint makes it again

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds no xnaming run"):
        RunWriter(foreign, IDENTITY, run_format=DNN_FORMAT)
    with pytest.raises(ValueError, match="run_format"):
        RunWriter(tmp_path / "new", IDENTITY, run_format="xnaming-bundle")
