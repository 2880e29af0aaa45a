"""Test accuracy of a classifier, and how much it leans on a planted cue: ``xnaming evaluate``.

:func:`accuracy_table` measures a model on a data set's test split, per category and overall.
For a toybirds data set with a planted shortcut it also asks the two questions a shortcut
raises, on images toybirds draws again (:func:`xnn_training.data.toybirds.draw_toybirds_image`,
the same image with or without the cue, no inpainting):

- ``accuracy_no_cue``: is the planted class still recognised once its cue is gone? (its test
  images drawn without the cue; on ``overall``: every test image, the planted class's uncued);
- ``cue_pull``: does the cue alone make a bird the planted class? (the share of the other
  classes' test images predicted as the planted class once the cue is painted on them).

Both are filled on the planted class's row and on ``overall``, NaN elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import Dataset

from xnn_training.data.datasets import ImageDataset, detect_layout, image_transform, open_dataset
from xnn_training.devices import resolve_device
from xnn_training.training.fit_dnn import per_class_accuracy, predict_labels
from xnn_training.training.runs import load_dnn_run

__all__ = ["ACCURACY_COLUMNS", "CUE_COLUMNS", "accuracy_table", "evaluate", "planted_category"]

ACCURACY_COLUMNS = ["category", "images", "accuracy"]
CUE_COLUMNS = ["accuracy_no_cue", "cue_pull"]
"""Added to :data:`ACCURACY_COLUMNS` for a data set with a planted cue."""


def planted_category(data: str | Path) -> str | None:
    """The class a toybirds data set planted its cue in; None for any other data set."""
    layout, path = detect_layout(data)
    if layout != "toybirds":
        return None
    shortcut = json.loads((path / "toybirds.json").read_text()).get("shortcut")
    return shortcut["category"] if shortcut else None


class _Redrawn(Dataset):
    """Test images of a toybirds data set drawn again, with or without the cue."""

    def __init__(self, dataset: ImageDataset, indices: list[int], *, cue: bool) -> None:
        self.dataset, self.indices, self.cue = dataset, indices, cue

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, object]:
        from xnn_training.data.toybirds import draw_toybirds_image

        sample = self.dataset.samples[self.indices[index]]
        image = draw_toybirds_image(self.dataset.root, sample.image_id, cue=self.cue)
        return {"image": self.dataset.transform(image), "label": sample.label}


def _predict(model: torch.nn.Module, images: Dataset, device: torch.device, batch: int):
    return predict_labels(model, images, device=device, batch_size=batch)


def accuracy_table(
    model: torch.nn.Module,
    data: str | Path,
    *,
    classes: list[str],
    image_size: int,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
) -> pd.DataFrame:
    """Test accuracy per category and ``overall`` (see the module's docstring).

    Parameters
    ----------
    model
        The classifier, on ``device``; its logits follow ``classes``.
    data
        The data set; with a planted cue (toybirds ``--shortcut``) in one of ``classes``, the
        table also has :data:`CUE_COLUMNS`.
    classes, image_size
        The classifier's classes (logit order) and input size.

    Returns
    -------
    pandas.DataFrame
        :data:`ACCURACY_COLUMNS` (plus :data:`CUE_COLUMNS`), one row per category in logit
        order, then ``overall``; accuracies are shares in [0, 1].
    """
    device = torch.device(device)
    test = open_dataset(data, "test", classes, image_size)
    labels = test.labels
    predicted = _predict(model, test, device, batch_size)
    rows = [
        {"category": name, "images": images, "accuracy": accuracy}
        for name, (images, accuracy) in per_class_accuracy(predicted, labels, classes).items()
    ]
    table = pd.DataFrame(rows, columns=ACCURACY_COLUMNS)
    planted = planted_category(data)
    if planted is None or planted not in classes:
        return table
    k = classes.index(planted)
    own = torch.nonzero(labels == k).flatten().tolist()
    others = torch.nonzero(labels != k).flatten().tolist()
    test.transform = image_transform(image_size)
    uncued = _predict(model, _Redrawn(test, own, cue=False), device, batch_size)
    cued = _predict(model, _Redrawn(test, others, cue=True), device, batch_size)
    no_cue = predicted.clone()
    no_cue[own] = uncued
    for column in CUE_COLUMNS:
        table[column] = float("nan")
    planted_row, overall_row = k, len(classes)
    table.loc[planted_row, "accuracy_no_cue"] = float((uncued == k).float().mean())
    table.loc[overall_row, "accuracy_no_cue"] = float((no_cue == labels).float().mean())
    pull = float((cued == k).float().mean()) if len(cued) else float("nan")
    table.loc[[planted_row, overall_row], "cue_pull"] = pull
    return table


def evaluate(
    dnn: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    device: str = "auto",
    batch_size: int = 64,
) -> Path:
    """Measure a DNN run on a data set's test split and write ``out/accuracy.csv``.

    Parameters
    ----------
    dnn
        A DNN run directory (``xnaming train dnn``).
    data
        A data set holding the run's classes (toybirds, CUB-200 or ImageFolder).
    out
        Directory to write (created if missing).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns
    -------
    Path
        ``out``.
    """
    device_ = resolve_device(device)
    run = load_dnn_run(dnn, device=str(device_))
    table = accuracy_table(
        run.model, data, classes=run.classes, image_size=run.image_size,
        device=device_, batch_size=batch_size,
    )  # fmt: skip
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "accuracy.csv", index=False, float_format="%.6f")
    return out
