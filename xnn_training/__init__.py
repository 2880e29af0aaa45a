"""xnn_training: data sets, the DNN classifier and its per-class explanation networks (xNN).

Data flow: :func:`make_toybirds` / :func:`open_dataset` -> :func:`train_dnn` (a DNN run) ->
:func:`train_xnn` (an xNN run with ``fidelity.csv``) -> :func:`explain` (the map bundle) ->
:func:`pointing_game` / :func:`part_heat_table` (where the maps fall on toybirds' part masks).

Public names are imported lazily, so ``import xnn_training`` (and ``xnaming --help``) does not
import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "XNN",
    "DNNRun",
    "ExplainedModel",
    "ImageDataset",
    "LossWeights",
    "XNNRun",
    "build_dnn",
    "cue_pointing_game",
    "explain",
    "fidelity_report",
    "fit_xnn",
    "heat_by_part",
    "load_dnn_run",
    "load_xnn_run",
    "make_toybirds",
    "open_dataset",
    "part_heat_table",
    "pointing_game",
    "pointing_summary",
    "train_dnn",
    "train_xnn",
]

_HOME = {
    "XNN": "nets.xnn",
    "DNNRun": "training.runs",
    "ExplainedModel": "training.runs",
    "XNNRun": "training.runs",
    "load_dnn_run": "training.runs",
    "load_xnn_run": "training.runs",
    "ImageDataset": "data.datasets",
    "open_dataset": "data.datasets",
    "LossWeights": "nets.losses",
    "build_dnn": "nets.models",
    "fidelity_report": "training.fidelity",
    "fit_xnn": "training.fit_xnn",
    "train_xnn": "training.fit_xnn",
    "train_dnn": "training.fit_dnn",
    "make_toybirds": "data.toybirds",
    "explain": "maps.explain",
    "cue_pointing_game": "maps.part_masks",
    "heat_by_part": "maps.part_masks",
    "part_heat_table": "maps.part_masks",
    "pointing_game": "maps.part_masks",
    "pointing_summary": "maps.part_masks",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(import_module(f"xnn_training.{_HOME[name]}"), name)
    raise AttributeError(f"module 'xnn_training' has no attribute {name!r}")
