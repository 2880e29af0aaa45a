"""Run directories: what ``xnaming train dnn`` / ``train xnn`` write, and loading them back.

A run directory holds ``weights.safetensors``, ``config.json`` (everything needed to rebuild the
model) and ``classes.json`` (class names in logit order); see docs/formats.md, "Runs". The
training commands write them through :class:`xnn_training.training.run_writer.RunWriter`, which
also keeps the checkpoint an interrupted run resumes from. No pickles: tensors in safetensors,
everything else in JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from xnn_training.files import relative, sha256  # re-exported for the training code
from xnn_training.nets.models import build_dnn, feature_extractor
from xnn_training.nets.xnn import XNN

__all__ = [
    "DNN_FORMAT",
    "XNN_FORMAT",
    "DNNRun",
    "ExplainedModel",
    "XNNRun",
    "load_dnn_run",
    "load_xnn_run",
    "relative",
    "sha256",
]

DNN_FORMAT, XNN_FORMAT, VERSION = "xnaming-dnn-run", "xnaming-xnn-run", 1
WEIGHTS, CONFIG, CLASSES = "weights.safetensors", "config.json", "classes.json"


def versions() -> dict[str, str]:
    return {name: version(name) for name in ("xnaming", "torch", "torchvision")}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_run(out: Path, model: nn.Module, config: dict[str, Any], classes: list[str]) -> None:
    """Write weights, config and classes; the weights last-but-one so config names their hash."""
    out.mkdir(parents=True, exist_ok=True)
    state = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS))
    (out / CLASSES).write_text(json.dumps(classes, indent=2) + "\n")
    (out / CONFIG).write_text(json.dumps(config, indent=2) + "\n")


def _read_config(path: Path, expected_format: str) -> dict[str, Any]:
    if not path.is_dir():
        raise FileNotFoundError(f"run: {path} is not a directory")
    for name in (WEIGHTS, CONFIG, CLASSES):
        if not (path / name).is_file():
            raise FileNotFoundError(
                f"run: {path / name} is missing; is {path} a finished run of xnaming train?"
            )
    config = json.loads((path / CONFIG).read_text())
    if config.get("format") != expected_format:
        raise ValueError(
            f"run: {path} is a {config.get('format')!r} run, expected {expected_format!r}"
        )
    return config


@dataclass
class DNNRun:
    """A trained DNN loaded back: the model (eval mode), its config and class names."""

    path: Path
    model: nn.Module
    config: dict[str, Any]
    classes: list[str]

    @property
    def feature_layer(self) -> str:
        return self.config["feature_layer"]

    @property
    def image_size(self) -> int:
        return int(self.config["image_size"])

    @property
    def data_path(self) -> Path:
        """The data set it was trained on (stored relative to the run directory)."""
        return (self.path / self.config["data"]["path"]).resolve()

    def extractor(self) -> nn.Module:
        """Module returning ``{"features", "logits"}`` for a batch of images."""
        return feature_extractor(self.model, self.feature_layer).eval()


def load_dnn_run(path: str | Path, device: str = "cpu") -> DNNRun:
    """Load a run written by :func:`xnn_training.train_dnn` (model in eval mode)."""
    path = Path(path)
    config = _read_config(path, DNN_FORMAT)
    classes = json.loads((path / CLASSES).read_text())
    model = build_dnn(config["arch"], len(classes))
    model.load_state_dict(load_file(str(path / WEIGHTS)))
    return DNNRun(path, model.to(device).eval(), config, classes)


class ExplainedModel(nn.Module):
    """DNN and xNN in one forward pass: logits, features, X-features and xNN scores.

    ``forward(images)`` returns ``{"logits": (B, n_dnn_classes), "features": (B, d),
    "x_features": (B, C, k), "scores": (B, C)}``, where C indexes the explained classes
    (``class_indices`` into the DNN's logits).
    """

    def __init__(self, extractor: nn.Module, xnn: XNN, class_indices: list[int]) -> None:
        super().__init__()
        self.extractor, self.xnn = extractor, xnn
        self.register_buffer("class_indices", torch.tensor(class_indices, dtype=torch.long))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.extractor(images)
        return {**out, **self.xnn(out["features"])}


@dataclass
class XNNRun:
    """A trained xNN loaded back, with the DNN run it explains."""

    path: Path
    xnn: XNN
    config: dict[str, Any]
    classes: list[str]
    dnn: DNNRun

    @property
    def class_indices(self) -> list[int]:
        """Position of each explained class among the DNN's logits."""
        return [self.dnn.classes.index(name) for name in self.classes]

    @property
    def concepts(self) -> dict[str, dict[int, str]]:
        """Per class, X-feature -> the concept it was aligned with (``train xnn --namings``);
        empty for an xNN trained without namings. An X-feature not listed is free."""
        return {
            name: {int(j): concept for j, concept in mapping.items()}
            for name, mapping in self.config.get("concepts", {}).items()
        }

    def model(self) -> ExplainedModel:
        """DNN + xNN as one module (eval mode)."""
        return ExplainedModel(self.dnn.extractor(), self.xnn, self.class_indices).eval()


def load_xnn_run(
    path: str | Path, dnn: str | Path | DNNRun | None = None, device: str = "cpu"
) -> XNNRun:
    """Load a run written by :func:`xnn_training.train_xnn` and the DNN run it came from.

    Parameters
    ----------
    path
        The xNN run directory.
    dnn
        The DNN run (a path or a loaded run); default: the one named in the xNN's config.

    Raises
    ------
    ValueError
        When the DNN run's weights are not the ones the xNN was trained on (sha256 differs).
    """
    path = Path(path)
    config = _read_config(path, XNN_FORMAT)
    if dnn is None:
        dnn = (path / config["dnn_run"]["path"]).resolve()
    dnn_run = dnn if isinstance(dnn, DNNRun) else load_dnn_run(dnn, device)
    actual = sha256(dnn_run.path / WEIGHTS)
    if actual != config["dnn_run"]["sha256"]:
        raise ValueError(
            f"run: the xNN {path} was trained on DNN weights with sha256 "
            f"{config['dnn_run']['sha256'][:12]}..., but {dnn_run.path / WEIGHTS} has "
            f"{actual[:12]}...; give the DNN run it was trained on (or retrain the xNN)"
        )
    classes = json.loads((path / CLASSES).read_text())
    unknown = [name for name in classes if name not in dnn_run.classes]
    if unknown:
        raise ValueError(f"run: xNN classes {unknown} are not classes of the DNN {dnn_run.path}")
    shape = config["xnn"]
    xnn = XNN(shape["in_features"], len(classes), shape["k"], shape["hidden"], shape["dropout"])
    xnn.load_state_dict(load_file(str(path / WEIGHTS)))
    return XNNRun(path, xnn.to(device).eval(), config, classes, dnn_run)
