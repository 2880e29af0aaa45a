"""``--device``: resolution and its errors, DataLoader settings, strict float32 on GPUs."""

from __future__ import annotations

import pytest
import torch

from xnaming.cli import main
from xnaming.errors import BAD_INPUT
from xnn_training.devices import loader_options, resolve_device, strict_float32


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this machine has ``n`` GPUs (only torch's two questions are answered)."""

    def have(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    return have


def test_cpu_and_auto_without_a_gpu(gpus):
    gpus(0)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


def test_cuda_without_a_gpu_says_why_and_what_to_do(gpus):
    gpus(0)
    for spec in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match=r"asks for a CUDA GPU, but torch sees none.*cpu"):
            resolve_device(spec)


def test_ranks_spread_over_the_gpus(gpus):
    gpus(2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert [resolve_device("cuda", local_rank=r).index for r in range(5)] == [0, 1, 0, 1, 0]
    assert resolve_device("cuda:1", local_rank=0) == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"this machine has 2 GPU\(s\): cuda:0 to cuda:1"):
        resolve_device("cuda:2")


def test_unknown_names_list_the_valid_ones(gpus):
    gpus(1)
    for spec in ("gpu", "cuda:", "cuda:-1", "mps", ""):
        with pytest.raises(ValueError, match=r"expected auto .*, cpu, cuda or cuda:N"):
            resolve_device(spec)


def test_loader_options():
    assert loader_options(torch.device("cpu")) == {"num_workers": 0, "pin_memory": False}
    gpu = loader_options(torch.device("cuda", 0))
    assert gpu["num_workers"] == 2
    assert gpu["pin_memory"] is True
    assert loader_options(torch.device("cpu"), 3)["num_workers"] == 3
    with pytest.raises(ValueError, match="loader_workers"):
        loader_options(torch.device("cpu"), -1)


def test_strict_float32_is_restored_also_after_an_error():
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    before = conv.fp32_precision, matmul.fp32_precision
    with strict_float32(torch.device("cpu")):
        assert (conv.fp32_precision, matmul.fp32_precision) == before
    inside = []

    def fail_inside() -> None:
        with strict_float32(torch.device("cuda", 0)):
            inside.append((conv.fp32_precision, matmul.fp32_precision))
            raise KeyError

    with pytest.raises(KeyError):
        fail_inside()
    assert inside == [("ieee", "ieee")]
    assert (conv.fp32_precision, matmul.fp32_precision) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
@pytest.mark.parametrize(
    "command",
    [
        ["explain", "--dnn", "d", "--xnn", "x", "--data", "t", "--out", "b"],
        ["train", "dnn", "--data", "t", "--out", "d"],
        ["train", "xnn", "--dnn", "d", "--out", "x"],
    ],
)
def test_the_commands_refuse_cuda_without_a_gpu(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--device", "cuda"]) == BAD_INPUT
    err = capsys.readouterr().err
    assert "'cuda' asks for a CUDA GPU, but torch sees none" in err
    assert main([*command, "--device", "tpu"]) == BAD_INPUT
    assert "expected auto" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written
