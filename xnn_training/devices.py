"""Where the tensors live: ``--device auto|cpu|cuda|cuda:N``, and what a GPU needs to stay busy.

:func:`resolve_device` turns the option into a ``torch.device`` and refuses what this machine
cannot do, with the reason; :func:`loader_options` gives a ``DataLoader`` its workers and pinned
memory for that device; :func:`strict_float32` keeps GPU convolutions and matrix products in
IEEE float32 for the duration of a block, so that maps computed on a GPU equal the CPU's within
float32 rounding (docs/maps.md, "Devices").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

__all__ = ["DEVICE_HELP", "loader_options", "resolve_device", "strict_float32"]

DEVICE_HELP = "auto (a GPU when there is one), cpu, cuda or cuda:N"
GPU_LOADER_WORKERS = 2
"""DataLoader processes per rank on a GPU: decoding and resizing (a few ms per image) then run
beside the GPU's work instead of before it."""


def resolve_device(spec: str | torch.device = "auto", *, local_rank: int = 0) -> torch.device:
    """The device an ``--device`` option names, checked against this machine.

    Parameters
    ----------
    spec
        ``"auto"`` (CUDA when available, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    local_rank
        The process's rank on this machine (torchrun's ``LOCAL_RANK``): ``"auto"`` and
        ``"cuda"`` give rank r the GPU ``r % device_count``, so ranks spread over the GPUs
        (several ranks per GPU when there are more ranks than GPUs). ``"cuda:N"`` is taken as
        given.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        A name that is none of these, CUDA asked for on a machine without a usable GPU, or a
        GPU index this machine does not have.
    """
    text = str(spec).strip().lower()
    if text == "cpu":
        return torch.device("cpu")
    if text == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        text = "cuda"
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise ValueError(f"device: expected {DEVICE_HELP}, got {str(spec)!r}")
    if not torch.cuda.is_available():
        built = torch.version.cuda or "none"
        raise ValueError(
            f"device: {str(spec)!r} asks for a CUDA GPU, but torch sees none on this machine "
            f"(torch {torch.__version__}, built with CUDA {built}; no GPU, no driver, or "
            "CUDA_VISIBLE_DEVICES hides them). Use --device cpu, or --device auto to take a "
            "GPU only where there is one."
        )
    count = torch.cuda.device_count()
    index = int(match[1]) if match[1] is not None else local_rank % count
    if index >= count:
        raise ValueError(
            f"device: {str(spec)!r}, but this machine has {count} GPU(s): cuda:0 to "
            f"cuda:{count - 1}"
        )
    return torch.device("cuda", index)


def loader_options(device: torch.device, workers: int | None = None) -> dict[str, Any]:
    """``DataLoader`` keyword arguments for ``device``: worker processes and pinned memory.

    ``workers`` None: none on the CPU (they would take cores from the computation),
    :data:`GPU_LOADER_WORKERS` on a GPU. Pinned memory lets ``.to(device, non_blocking=True)``
    copy a batch while the GPU still works on the previous one.
    """
    if workers is None:
        workers = GPU_LOADER_WORKERS if device.type == "cuda" else 0
    if workers < 0:
        raise ValueError(f"loader_workers: expected 0 or more, got {workers}")
    options: dict[str, Any] = {"num_workers": workers, "pin_memory": device.type == "cuda"}
    if workers:
        options["prefetch_factor"] = 2
    return options


@contextmanager
def strict_float32(device: torch.device) -> Iterator[None]:
    """Run the block with TensorFloat-32 off on ``device`` (a no-op on the CPU).

    PyTorch lets cuDNN convolutions use TF32 by default (10-bit mantissa: relative errors of
    about 1e-3 per layer); IEEE float32 keeps GPU maps equal to the CPU's within float32
    rounding. Both settings are restored afterwards, also on errors.
    """
    if device.type != "cuda":
        yield
        return
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    before = conv.fp32_precision, matmul.fp32_precision
    conv.fp32_precision, matmul.fp32_precision = "ieee", "ieee"
    try:
        yield
    finally:
        conv.fp32_precision, matmul.fp32_precision = before
