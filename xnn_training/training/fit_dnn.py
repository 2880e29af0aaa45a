"""Train the DNN classifier on a local data set: :func:`train_dnn` (``xnaming train dnn``)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from xnn_training.data.datasets import ImageDataset, detect_layout, open_dataset
from xnn_training.devices import loader_options, resolve_device
from xnn_training.nets.models import build_dnn, default_feature_layer, feature_extractor
from xnn_training.training.run_writer import RunWriter
from xnn_training.training.runs import DNN_FORMAT, relative, sha256

__all__ = ["evaluate_accuracy", "per_class_accuracy", "predict_labels", "train_dnn"]

TOYCNN_EPOCHS = 20
TORCHVISION_EPOCHS = 10
WEIGHT_DECAY = 1e-4


def _default_size(data: Path) -> int:
    layout, path = detect_layout(data)
    if layout == "toybirds":
        return int(json.loads((path / "toybirds.json").read_text())["size"])
    return 224


def cosine_lr(base: float, epoch: int, epochs: int) -> float:
    """Learning rate of ``epoch`` (0-based): cosine decay from ``base`` towards 0.

    A function of the epoch alone, so a resumed run continues on exactly the same schedule.
    """
    return base * 0.5 * (1 + math.cos(math.pi * epoch / epochs))


def train_dnn(
    data: str | Path,
    out: str | Path,
    *,
    arch: str = "toycnn",
    weights: str | Path | None = None,
    epochs: int | None = None,
    batch_size: int = 32,
    lr: float = 1e-3,
    image_size: int | None = None,
    classes: Sequence[str] | None = None,
    feature_layer: str | None = None,
    seed: int = 0,
    device: str = "auto",
    loader_workers: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Train a classifier and write a DNN run directory.

    Parameters
    ----------
    data
        Local data set directory (toybirds, CUB-200-2011 or ImageFolder).
    out
        Run directory. An unfinished run there with the same settings is resumed from its last
        finished epoch; a finished one is left as it is.
    arch
        ``"toycnn"`` or a torchvision classification architecture (``vgg16``, ``resnet50``, ...).
    weights
        Local pretrained weights (state dict file); the head is resized to the data's classes.
    epochs
        Default: 20 for toycnn, 10 for torchvision architectures (fine-tuning).
    batch_size, lr
        Adam with weight decay 1e-4; the learning rate follows a cosine decay over the epochs.
    image_size
        Square input size; default: the toybirds size, else 224.
    classes
        Train on these classes only (names; CUB numbers allowed). Default: all.
    feature_layer
        The layer the xNN will read (module or graph node name); default: the ReLU after the
        first fully-connected layer (VGG/toycnn ``classifier.1``), or the pooled features.
    seed
        Seeds initialisation, shuffling and dropout (each epoch from ``seed`` and its number).
    device
        ``"auto"`` (a GPU when there is one), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``
        (:func:`xnn_training.devices.resolve_device`).
    loader_workers
        DataLoader processes; default 0 on the CPU, 2 on a GPU (with pinned memory).
    overwrite
        Replace whatever ``out`` holds.

    Returns
    -------
    Path
        ``out``, holding weights.safetensors, config.json, classes.json and accuracy.csv.

    Raises
    ------
    ValueError
        Bad options, an unknown architecture or layer, a device this machine does not have.
    FileExistsError
        ``out`` holds something else (without ``overwrite``).
    """
    out = Path(out)
    device = resolve_device(device)
    loading = loader_options(device, loader_workers)
    size = image_size or _default_size(Path(data))
    train_set = open_dataset(data, "train", classes, size, train_transform=True)
    test_set = open_dataset(data, "test", classes, size)
    epochs = epochs or (TOYCNN_EPOCHS if arch == "toycnn" else TORCHVISION_EPOCHS)
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(
            f"epochs, batch_size, lr: expected positive values, got {epochs}, {batch_size}, {lr}"
        )
    training = {
        "arch": arch,
        "weights": None if weights is None else str(Path(weights).resolve()),
        "weights_sha256": None if weights is None else sha256(weights),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": WEIGHT_DECAY,
        "image_size": size,
        "classes": train_set.classes,
        "data": str(Path(data).resolve()),
        "seed": seed,
    }
    writer = RunWriter(out, training, run_format=DNN_FORMAT, overwrite=overwrite)
    if writer.finished:
        return out

    torch.manual_seed(seed)
    model = build_dnn(arch, len(train_set.classes), weights).to(device)
    layer = feature_layer or default_feature_layer(model, arch)
    feature_extractor(model, layer)  # fail now, not after training, on a bad layer name
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    for epoch in range(writer.resume(model, optimizer), epochs):
        loader = DataLoader(
            train_set,
            batch_size=batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(seed * 1009 + epoch),
            **loading,
        )
        loss, accuracy = _train_epoch(
            model, optimizer, loader, epoch=epoch, epochs=epochs, lr=lr, seed=seed, device=device
        )
        writer.history.append({"epoch": epoch + 1, "loss": loss, "accuracy": accuracy})
        print(
            f"dnn epoch {epoch + 1}/{epochs}: loss {loss:.4f}, train accuracy {accuracy:.3f}",
            flush=True,
        )
        writer.checkpoint()

    model.eval()
    per_class = evaluate_accuracy(
        model, test_set, device=device, batch_size=batch_size, loader_workers=loader_workers
    )
    _write_accuracy(per_class, out / "accuracy.csv")
    config = {
        "arch": arch,
        "num_classes": len(train_set.classes),
        "feature_layer": layer,
        "image_size": size,
        "data": {
            "path": relative(data, out),
            "layout": train_set.layout,
            "classes": train_set.classes,
        },
    }
    results = {"test_accuracy": per_class["overall"][1]}
    writer.finish(model, config, train_set.classes, results=results)
    _print_accuracy(per_class)
    print(f"xnaming train dnn: wrote {out}/ (weights.safetensors, config.json, accuracy.csv)")
    return out


def _train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    *,
    epoch: int,
    epochs: int,
    lr: float,
    seed: int,
    device: torch.device,
) -> tuple[float, float]:
    """One pass over ``loader`` (0-based ``epoch``); returns the mean loss and train accuracy.

    The seed and learning rate are functions of the epoch alone, so a resumed run repeats
    exactly the epochs an uninterrupted one would have trained.
    """
    torch.manual_seed(seed * 1009 + epoch)  # dropout and flips: a function of the epoch
    for group in optimizer.param_groups:
        group["lr"] = cosine_lr(lr, epoch, epochs)
    model.train()
    total, correct, loss_sum = 0, 0, 0.0
    bar = tqdm(loader, desc=f"dnn epoch {epoch + 1}/{epochs}", unit="batch", leave=False)
    for batch in bar:
        images = batch["image"].to(device, non_blocking=True)
        labels = batch["label"].to(device, non_blocking=True)
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += len(labels)
        correct += int((logits.argmax(1) == labels).sum())
        loss_sum += float(loss.detach()) * len(labels)
        bar.set_postfix(loss=f"{loss_sum / total:.3f}", acc=f"{correct / total:.3f}")
    return loss_sum / total, correct / total


def _write_accuracy(per_class: dict[str, tuple[int, float]], path: Path) -> None:
    """``accuracy.csv``: category, images, accuracy (the ``"overall"`` row last)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["category", "images", "accuracy"])
        for name, (images, accuracy) in per_class.items():
            writer.writerow([name, images, f"{accuracy:.6f}"])


def _print_accuracy(per_class: dict[str, tuple[int, float]]) -> None:
    width = max(len(name) for name in per_class)
    print(f"{'category':<{width}}  images  accuracy")
    for name, (images, accuracy) in per_class.items():
        print(f"{name:<{width}}  {images:>6}  {accuracy:8.3f}")


@torch.no_grad()
def evaluate_accuracy(
    model: torch.nn.Module,
    dataset: ImageDataset,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    loader_workers: int | None = None,
) -> dict[str, tuple[int, float]]:
    """Accuracy per class and ``"overall"``: ``{name: (images, accuracy in [0, 1])}``.

    ``model`` must be on ``device``; ``loader_workers`` as in :func:`train_dnn`.
    """
    predicted = predict_labels(
        model, dataset, device=device, batch_size=batch_size, loader_workers=loader_workers
    )
    return per_class_accuracy(predicted, dataset.labels, dataset.classes)


@torch.no_grad()
def predict_labels(
    model: torch.nn.Module,
    images: Dataset,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    loader_workers: int | None = None,
) -> torch.Tensor:
    """The predicted class index of every item of ``images`` (items with an ``"image"``), in
    order, on the CPU; ``model`` must be on ``device``."""
    device = torch.device(device)
    model.eval()
    loader = DataLoader(images, batch_size=batch_size, **loader_options(device, loader_workers))
    predictions = [
        model(batch["image"].to(device, non_blocking=True)).argmax(1).cpu()
        for batch in tqdm(loader, desc="evaluate", leave=False)
    ]
    return torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.long)


def per_class_accuracy(
    predicted: torch.Tensor, labels: torch.Tensor, classes: Sequence[str]
) -> dict[str, tuple[int, float]]:
    """``{name: (images, accuracy)}`` per class (in label order), then ``"overall"``."""
    result = {}
    for index, name in enumerate(classes):
        chosen = labels == index
        result[name] = (int(chosen.sum()), float((predicted[chosen] == index).float().mean()))
    result["overall"] = (len(labels), float((predicted == labels).float().mean()))
    return result
