"""The one writer of run directories: :class:`RunWriter`, for ``train dnn`` and ``train xnn``.

A run is written in three stages. Opening compares what the directory holds with this run's
identity (its training settings): a fresh directory starts a run, an unfinished run with the
same identity resumes, a finished one is left as it is, and anything else is refused unless
the caller asks to overwrite it, so nothing is lost silently. While training, ``checkpoint/``
holds the last saved epoch (model and optimiser tensors in safetensors, the history in JSON),
replaced atomically. Finishing writes the run's files (:func:`xnn_training.training.runs.write_run`)
and removes the checkpoint and any scratch files; ``config.json`` is the mark of a finished run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from xnn_training.training.runs import (
    CONFIG,
    DNN_FORMAT,
    VERSION,
    XNN_FORMAT,
    now,
    versions,
    write_run,
)

__all__ = ["RunWriter", "load_checkpoint", "save_checkpoint"]

CHECKPOINT = "checkpoint"
COMMANDS = {DNN_FORMAT: "xnaming train dnn", XNN_FORMAT: "xnaming train xnn"}
"""The command that writes each run format, as its messages name it."""
UNRECORDED = ("classes", "data")
"""Identity entries the config records elsewhere, so its ``training`` entry leaves them out."""


class RunWriter:
    """Write a training run directory; reopening an unfinished one resumes it.

    Parameters
    ----------
    out
        The run directory. Created by the first checkpoint (or scratch file) if missing.
    identity
        The training settings that make two runs the same run (JSON values). Stored in every
        checkpoint and in ``config.json`` as ``training_key`` and compared on reopening.
    run_format
        :data:`~xnn_training.training.runs.DNN_FORMAT` or
        :data:`~xnn_training.training.runs.XNN_FORMAT`.
    overwrite
        Replace whatever ``out`` holds.

    When ``out`` already holds this finished run, opening says so ("nothing to do") and
    :attr:`finished` is true.

    Raises
    ------
    FileExistsError
        ``out`` holds something that is not a run of this kind, or a run with another identity
        (without ``overwrite``).
    """

    def __init__(
        self, out: Path, identity: dict[str, Any], *, run_format: str, overwrite: bool = False
    ) -> None:
        if run_format not in COMMANDS:
            raise ValueError(f"run_format: expected one of {sorted(COMMANDS)}, got {run_format!r}")
        self.out = Path(out)
        self.identity = identity
        self.format = run_format
        self.command = COMMANDS[run_format]
        self.history: list[dict[str, Any]] = []
        """One entry per finished epoch, restored by :meth:`resume`."""
        self._status = _open(self.out, identity, overwrite)
        self._model: nn.Module | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._scratch: list[Path] = []
        if self.finished:
            print(f"{self.command}: {self.out} already holds this finished run; nothing to do")

    @property
    def finished(self) -> bool:
        """Whether ``out`` already holds this finished run (then there is nothing to do)."""
        return self._status == "done"

    @property
    def _checkpoint(self) -> Path:
        return self.out / CHECKPOINT

    def resume(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
        """Take the model and optimiser this run trains; restore them from the checkpoint.

        Returns the number of finished epochs (0 for a fresh run); :attr:`history` holds them.
        """
        self._model, self._optimizer = model, optimizer
        state = None
        if self._status == "resume":
            state = load_checkpoint(self._checkpoint, model, optimizer)
        self.history = state["history"] if state else []
        if self.history:
            print(
                f"{self.command}: resuming {self.out} after epoch "
                f"{len(self.history)}/{self.identity['epochs']}"
            )
        return len(self.history)

    def scratch(self, name: str) -> Path:
        """Path of a file kept for resuming (``checkpoint-<name>``), removed by :meth:`finish`."""
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"{CHECKPOINT}-{name}"
        self._scratch.append(path)
        return path

    def checkpoint(self) -> None:
        """Save the model, the optimiser and :attr:`history`: a resume continues from here."""
        if self._model is None or self._optimizer is None:
            raise RuntimeError("RunWriter.checkpoint: call resume(model, optimizer) first")
        save_checkpoint(
            self._checkpoint,
            self._model,
            self._optimizer,
            {"training_key": self.identity, "history": self.history},
        )

    def finish(
        self,
        model: nn.Module,
        config: dict[str, Any],
        classes: list[str],
        *,
        results: dict[str, Any] | None = None,
    ) -> None:
        """Write weights, ``classes.json`` and ``config.json``; remove checkpoint and scratch.

        ``config`` holds the run's own entries and ``results`` what training measured (after
        the history in ``config.json``); the writer adds the format, version and creation time,
        the training settings, the history, the package versions and the identity.
        """
        full = {
            "format": self.format,
            "version": VERSION,
            "created": now(),
            **config,
            "training": {k: v for k, v in self.identity.items() if k not in UNRECORDED},
            "history": self.history,
            **(results or {}),
            "versions": versions(),
            "training_key": self.identity,
        }
        write_run(self.out, model, full, classes)
        shutil.rmtree(self._checkpoint, ignore_errors=True)
        for path in self._scratch:
            path.unlink(missing_ok=True)


def _open(out: Path, identity: dict[str, Any], overwrite: bool) -> str:
    """What ``out`` holds for a run with ``identity``: ``"fresh"``, ``"resume"`` or ``"done"``."""
    if overwrite and out.exists():
        shutil.rmtree(out)
    if not out.exists() or not any(out.iterdir()):
        return "fresh"
    marker = out / CHECKPOINT / "state.json"
    if (out / CONFIG).is_file():
        previous, status = json.loads((out / CONFIG).read_text()).get("training_key"), "done"
    elif marker.is_file():
        previous, status = json.loads(marker.read_text()).get("training_key"), "resume"
    else:
        raise FileExistsError(
            f"out: {out} exists and holds no xnaming run; choose a new directory or --overwrite"
        )
    if previous != identity:
        raise FileExistsError(
            f"out: {out} holds a run trained with other settings; choose a new directory, "
            "repeat the original command to resume it, or pass --overwrite to replace it"
        )
    return status


def save_checkpoint(
    directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    """Model and optimiser tensors (safetensors) and ``state`` (JSON), replaced atomically."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    optim = optimizer.state_dict()
    scalars: dict[str, Any] = {}
    for index, entry in optim["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    payload = {**state, "param_groups": optim["param_groups"], "optim_scalars": scalars}
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(tensors, str(tmp / "state.safetensors"))
    (tmp / "state.json").write_text(json.dumps(payload, indent=2) + "\n")
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)


def load_checkpoint(
    directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any] | None:
    """Restore model and optimiser from ``directory``; return its state, or None if absent."""
    if not (directory / "state.json").is_file():
        return None
    payload = json.loads((directory / "state.json").read_text())
    tensors = load_file(str(directory / "state.safetensors"))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    optim_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            optim_state.setdefault(int(index), {})[name] = value
    for key, value in payload.pop("optim_scalars").items():
        index, name = key.split(".", 1)
        optim_state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": optim_state, "param_groups": payload.pop("param_groups")})
    return payload
