"""Correct a classifier with what annotators rejected: ``xnaming train dnn --from --feedback``.

The annotators named the maps of the data set's feedback split; the maps they discarded or
named with a background word give regions of those images the classifier should not rely on
(:func:`xnn_training.training.feedback.feedback_regions`). :func:`correct_dnn` fine-tunes the
classifier from its weights into a new, ordinary DNN run by one of two methods:

- ``"counterexamples"`` (the default): each epoch, counterexamples built from the rejected
  regions join the training images. *Removal*: a feedback image with its region filled from a
  training image of another class, its label kept (the region is not why it is its class;
  Teso and Kersting's CAIPI, Schramowski et al. 2020). *Transplant*: the region's pixels pasted
  at the same place on training images of other classes, their labels kept (the region does not
  make a class; the augmentation of A-ClArC, Anders et al. 2022). Together they make the
  rejected content as common in every class as in its own, so it stops predicting the class,
  and the classifier has to decide by what is left: the bird.
- ``"rrr"``: Right for the Right Reasons (Ross, Hughes and Doshi-Velez 2017): the training
  images' cross-entropy plus, on the feedback images, ``rrr_weight`` times the squared input
  gradient of the summed log-probabilities under the rejected regions.

docs/training.md says why the default is the default (bench/bench_correction.py measures both).
``regions`` replaces the annotators' regions for the controls the bench and the tests run:
``"random"`` (each region moved to a random place, same size and shape) and ``"shuffled"`` (the
regions handed to other feedback images). The run is deterministic for a seed on the CPU and
resumes after its last finished epoch, as ``xnaming train dnn`` does.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, DataLoader, Dataset
from tqdm.auto import tqdm

from analysis.measures.distrust import FLAG_LEVEL  # the report flags a category at this share
from xnn_training.data.datasets import ImageDataset, open_dataset
from xnn_training.defaults import CORRECTION_EPOCHS, CORRECTION_LR
from xnn_training.devices import loader_options, resolve_device
from xnn_training.files import sha256
from xnn_training.maps.explain import x_feature_maps
from xnn_training.maps.hot_spot import HOT_SPOT
from xnn_training.training.evaluate import accuracy_table
from xnn_training.training.feedback import REGION_LEVEL, FeedbackRegions, feedback_regions
from xnn_training.training.fit_dnn import WEIGHT_DECAY, cosine_lr
from xnn_training.training.run_writer import RunWriter
from xnn_training.training.runs import (
    DNN_FORMAT,
    WEIGHTS,
    DNNRun,
    load_dnn_run,
    load_xnn_run,
    relative,
)

__all__ = ["DEFAULT_METHOD", "METHODS", "REGIONS", "correct_dnn"]

METHODS = ("counterexamples", "rrr")
DEFAULT_METHOD = "counterexamples"
REGIONS = ("annotated", "random", "shuffled")
"""Whose regions: the annotators' (the correction), or the controls' (see the module doc)."""
EPOCHS = CORRECTION_EPOCHS
LR = CORRECTION_LR
PASTE_SHARE = 1.0
"""Chance, times a class's distrusted share, that one of its rejected regions is pasted on a
training image of another class, each epoch."""
REMOVALS = 2
"""Removal counterexamples of each feedback image with a rejected region, each epoch."""
RRR_WEIGHT = 1.0
COARSE_REGIONS = 0.25
"""Rejected regions covering more than this share of their images on average: the maps are too
coarse to isolate what the annotators rejected (docs/training.md), and the run says so."""


def _shuffled_namings(namings: str | Path, seed: int) -> pd.DataFrame:
    """The shuffled control: the namings' verdicts (status and concept) handed to other maps."""
    table = pd.read_csv(namings, dtype=str).fillna("")
    order = np.random.default_rng([seed, 77]).permutation(len(table))
    verdicts = table[["status", "concept"]].to_numpy()[order]
    return table.assign(status=verdicts[:, 0], concept=verdicts[:, 1])


def _moved_at_random(regions: dict[str, tuple], seed: int) -> dict[str, tuple]:
    """The random control: every region moved to a random place (same size and shape)."""
    rng = np.random.default_rng([seed, 78])
    moved = {}
    for key in sorted(regions):
        image, mask, label = regions[key]
        shift = tuple(int(v) for v in rng.integers(0, mask.shape[-1], 2))
        moved[key] = (image, torch.roll(mask, shift, dims=(-2, -1)), label)
    return moved


class _Composites(Dataset):
    """Counterexamples: ``(base, [(donor, region), ...], label)``: the base image with each
    region's pixels taken from its donor; then a random horizontal flip, as in training."""

    def __init__(self, plain: ImageDataset, feedback: dict[str, tuple], recipe: list[tuple]):
        self.plain, self.feedback, self.recipe = plain, feedback, recipe

    def __len__(self) -> int:
        return len(self.recipe)

    def _image(self, source) -> torch.Tensor:
        return self.feedback[source][0] if isinstance(source, str) else self.plain[source]["image"]

    def __getitem__(self, index: int) -> dict[str, object]:
        base, pastes, label = self.recipe[index]
        image = self._image(base)
        for donor, region in pastes:
            image = torch.where(self.feedback[region][1], self._image(donor), image)
        if torch.rand(()) < 0.5:
            image = image.flip(-1)
        return {"image": image, "label": label, "image_id": f"counterexample-{index}"}


def _recipe(
    regions: dict[str, tuple],
    labels: np.ndarray,
    rng: np.random.Generator,
    *,
    removals: int,
    paste_share: float,
) -> list[tuple]:
    """This epoch's counterexamples (see the module doc) from the flagged classes' regions.

    *Transplant*: each training image gets, with probability ``paste_share`` for each flagged
    class other than its own, one of that class's rejected regions pasted at the same place,
    its label kept. *Removal*: ``removals`` copies of each image with a rejected region, the
    region filled from a training image of another class, its label kept.
    """
    keys = sorted(regions)
    by_class: dict[int, list[str]] = {}
    for key in keys:
        by_class.setdefault(regions[key][2], []).append(key)
    recipe: list[tuple] = []
    for index, label in enumerate(labels):  # transplant
        pastes = []
        for c, owned in sorted(by_class.items()):
            if c != label and rng.random() < paste_share:
                key = owned[int(rng.integers(len(owned)))]
                pastes.append((key, key))
        if pastes:
            recipe.append((index, pastes, int(label)))
    for key in keys:  # removal
        label = regions[key][2]
        for donor in rng.choice(np.flatnonzero(labels != label), size=removals):
            recipe.append((key, [(int(donor), key)], label))
    return recipe


def _rrr_penalty(model, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Squared input gradient of the summed log-probabilities under ``masks`` (Ross et al.)."""
    images = images.clone().requires_grad_(True)
    log_probs = F.log_softmax(model(images), dim=1)
    (grad,) = torch.autograd.grad(log_probs.sum(), images, create_graph=True)
    return ((grad * masks[:, None]) ** 2).sum() / len(images), log_probs


def correct_dnn(
    dnn: str | Path,
    out: str | Path,
    *,
    namings: str | Path,
    bundle: str | Path,
    data: str | Path | None = None,
    method: str = DEFAULT_METHOD,
    regions: str = "annotated",
    epochs: int = EPOCHS,
    batch_size: int = 32,
    lr: float = LR,
    rrr_weight: float = RRR_WEIGHT,
    removals: int = REMOVALS,
    paste_share: float = PASTE_SHARE,
    keep_plain: bool = True,
    seed: int = 0,
    device: str = "auto",
    loader_workers: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Fine-tune a DNN run so it stops relying on the regions annotators rejected.

    Parameters
    ----------
    dnn
        The DNN run to correct (``xnaming train dnn``); it is not changed.
    out
        The new DNN run directory: an ordinary run (``train xnn``, ``explain``, ``evaluate``
        take it). An unfinished run with the same settings resumes; a finished one is kept.
    namings
        The namings CSV of ``bundle``'s maps (``xnaming collect`` or ``xnaming simulate``).
    bundle
        The map bundle of the feedback split, explained for ``dnn``.
    data
        The data set (default: the one ``dnn`` was trained on).
    method
        ``"counterexamples"`` (default) or ``"rrr"`` (see the module doc).
    regions
        ``"annotated"``; ``"random"`` or ``"shuffled"`` for the controls.
    epochs, batch_size, lr
        Fine-tuning: Adam (weight decay as ``train dnn``), cosine decay from ``lr``.
    rrr_weight
        The weight of the input-gradient penalty (``"rrr"`` only).
    removals, paste_share
        Removal counterexamples per feedback image with a rejected region, and rejected regions
        pasted per training image on average, each epoch (``"counterexamples"`` only).
    keep_plain
        Train on the training images as they are too, beside their pasted copies.
    seed
        Seeds the shuffling, the counterexamples and the augmentation of every epoch.
    device, loader_workers
        As ``xnaming train dnn``.
    overwrite
        Replace whatever ``out`` holds.

    Returns
    -------
    Path
        ``out``, with weights.safetensors, config.json (``correction`` says from what),
        classes.json and accuracy.csv.

    Raises
    ------
    ValueError
        Nothing to correct, a bundle of another split or classifier, namings of another bundle,
        a bad option.
    """
    _check_options(method, regions, epochs, batch_size, lr, rrr_weight)
    out, dnn = Path(out), Path(dnn)
    device_ = resolve_device(device)
    source = load_dnn_run(dnn)
    data = Path(data) if data is not None else source.data_path
    size, classes = source.image_size, source.classes
    verdicts = _shuffled_namings(namings, seed) if regions == "shuffled" else namings
    found = feedback_regions(verdicts, bundle, dnn_weights=dnn / WEIGHTS, size=size)
    train_set = open_dataset(data, "train", classes, size, train_transform=True)
    plain_train = open_dataset(data, "train", classes, size)
    flagged = sorted(c for c, share in found.distrusted.items() if share >= FLAG_LEVEL)
    feedback = _rejected_images(found, data, classes, size, flagged)
    if flagged:
        feedback |= _regions_on_training_images(found, source, plain_train, flagged, device_)
    if regions == "random":
        feedback = _moved_at_random(feedback, seed)
    warning = _coarse_regions_warning(feedback, found.map_layer)
    if warning:
        print(f"xnaming train dnn: warning: {warning}", file=sys.stderr)
    identity = {
        "from": {"path": str(dnn.resolve()), "sha256": sha256(dnn / WEIGHTS)},
        "namings_sha256": sha256(namings),
        "bundle": str(Path(bundle).resolve()),
        "method": method,
        "regions": regions,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "rrr_weight": rrr_weight if method == "rrr" else None,
        "counterexamples": [removals, paste_share, keep_plain] if method != "rrr" else None,
        "weight_decay": WEIGHT_DECAY,
        "image_size": size,
        "classes": classes,
        "data": str(data.resolve()),
        "seed": seed,
        "flagged": flagged,
    }
    if not flagged:
        epochs = 0
        print(
            "xnaming train dnn: no category's feedback decisions rest mostly on rejected maps "
            f"(none distrusted at {FLAG_LEVEL:.0%} or more), so the classifier is kept as it is"
        )
    writer = RunWriter(out, identity, run_format=DNN_FORMAT, overwrite=overwrite)
    if writer.finished:
        return out
    torch.manual_seed(seed)
    model = copy.deepcopy(source.model).to(device_)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    labels = plain_train.labels.numpy()
    loading = loader_options(device_, loader_workers)
    for epoch in range(writer.resume(model, optimizer), epochs):
        torch.manual_seed(seed * 1009 + epoch)
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(lr, epoch, epochs)
        rng = np.random.default_rng([seed, epoch])
        epoch_set: Dataset = train_set
        if method == "counterexamples":
            recipe = _recipe(feedback, labels, rng, removals=removals, paste_share=paste_share)
            epoch_set = _with_counterexamples(train_set, plain_train, feedback, recipe, keep_plain)
        loader = DataLoader(
            epoch_set, batch_size=batch_size, shuffle=True,
            generator=torch.Generator().manual_seed(seed * 1009 + epoch), **loading,
        )  # fmt: skip
        loss, accuracy = _epoch(
            model, optimizer, loader, feedback if method == "rrr" else None,
            rrr_weight=rrr_weight, rng=rng, device=device_,
            desc=f"correct epoch {epoch + 1}/{epochs}",
        )  # fmt: skip
        writer.history.append({"epoch": epoch + 1, "loss": loss, "accuracy": accuracy})
        print(f"correct epoch {epoch + 1}/{epochs}: loss {loss:.4f}, accuracy {accuracy:.3f}")
        writer.checkpoint()

    model.eval()
    table = accuracy_table(
        model, data, classes=classes, image_size=size, device=device_, batch_size=batch_size
    )
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "accuracy.csv", index=False, float_format="%.6f")
    correction = {"from": dnn, "bundle": bundle, "method": method, "regions": regions}
    config = _run_config(source, data, out, layout=train_set.layout, correction=correction)
    config["correction"] |= {
        "flagged": flagged,
        "rejected_features": {c: found.rejected_features.get(c, []) for c in flagged},
        "rejected_regions": len(feedback),
        "rejected_maps": found.maps,
    }
    results = {"test_accuracy": float(table["accuracy"].iloc[-1])}
    writer.finish(model, config, classes, results=results)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"xnaming train dnn: wrote {out}/ (weights.safetensors, config.json, accuracy.csv)")
    return out


def _check_options(
    method: str, regions: str, epochs: int, batch_size: int, lr: float, rrr_weight: float
) -> None:
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    if regions not in REGIONS:
        raise ValueError(f"regions: expected one of {REGIONS}, got {regions!r}")
    if epochs < 1 or batch_size < 1 or lr <= 0 or rrr_weight < 0:
        raise ValueError(
            f"epochs, batch_size, lr, rrr_weight: expected positive values, got {epochs}, "
            f"{batch_size}, {lr}, {rrr_weight}"
        )


def _coarse_regions_warning(regions: dict[str, tuple], map_layer: str) -> str | None:
    """A line for regions so large that removing them takes the object away too, else None."""
    if not regions:
        return None
    area = float(np.mean([float(mask.float().mean()) for _, mask, _ in regions.values()]))
    if area <= COARSE_REGIONS:
        return None
    return (
        f"the rejected regions cover {area:.0%} of their images on average: the maps of "
        f"{map_layer or 'the map layer'} are too coarse to isolate what the annotators "
        "rejected, so the correction may take the object away too; explain the feedback split "
        "with a finer --layer, or use larger images (docs/training.md)"
    )


def _with_counterexamples(
    train_set: Dataset, plain_train: ImageDataset, feedback: dict, recipe: list, keep_plain: bool
) -> Dataset:
    """One epoch's images: the counterexamples of ``recipe``, beside the plain ones if asked."""
    composites = _Composites(plain_train, feedback, recipe)
    return ConcatDataset([train_set, composites]) if keep_plain else composites


def _rejected_images(
    found: FeedbackRegions, data: Path, classes: list[str], size: int, flagged: list[str]
) -> dict[str, tuple]:
    """Image id -> (image tensor, rejected-region mask, label) of every feedback image of a
    flagged class with a rejected region; refuses a bundle whose images are not the data set's
    feedback split."""
    feedback_set = open_dataset(data, "feedback", classes, size)
    index = {s.image_id: i for i, s in enumerate(feedback_set.samples)}
    missing = sorted(set(found.rejected) - set(index))
    if missing:
        raise ValueError(
            f"bundle: image {missing[0]!r} is not in the feedback split of {data}; explain "
            "that data set's feedback split"
        )
    feedback = {}
    for image_id, mask in found.rejected.items():
        item = feedback_set[index[image_id]]
        if classes[int(item["label"])] in flagged:
            feedback[image_id] = (item["image"], torch.from_numpy(mask)[None], int(item["label"]))
    return feedback


def _regions_on_training_images(
    found: FeedbackRegions,
    source: DNNRun,
    plain_train: ImageDataset,
    flagged: list[str],
    device: torch.device,
    batch_size: int = 64,
) -> dict[str, tuple]:
    """``"train:<index>"`` -> (image, mask, label): on each training image of a flagged class,
    the lit area (:data:`REGION_LEVEL`) of the X-features the annotators rejected in that class,
    less the hot spots of those they named.

    The annotators judged a few feedback images; the X-feature whose maps they rejected looks
    at the same content on every image of the class, so its hot spots carry their verdict to
    the training set (where the classifier learned the shortcut).
    """
    if found.xnn_run is None:
        return {}
    run = load_xnn_run(found.xnn_run, dnn=source)
    run.dnn.model.to(device)
    run.xnn.to(device)
    labels = plain_train.labels.numpy()
    regions: dict[str, tuple] = {}
    for name in flagged:
        rejected = found.rejected_features.get(name, [])
        kept = [k for k in found.named_features.get(name, []) if k not in rejected]
        if not rejected or name not in run.classes:
            continue
        label = source.classes.index(name)
        indices = np.flatnonzero(labels == label)
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            images = torch.stack([plain_train[int(i)]["image"] for i in chunk])
            heat = x_feature_maps(
                run, images.to(device), run.classes.index(name), rejected + kept, found.map_layer
            ).cpu()
            peak = heat.amax(dim=(-2, -1), keepdim=True)
            lit = (heat >= REGION_LEVEL * peak) & (peak > 0)
            named = (heat >= HOT_SPOT * peak) & (peak > 0)
            masks = lit[:, : len(rejected)].any(1) & ~named[:, len(rejected) :].any(1)
            for i, image, mask in zip(chunk, images, masks, strict=True):
                if mask.any():
                    regions[f"train:{int(i)}"] = (image, mask[None], label)
    run.dnn.model.cpu()
    return regions


def _run_config(source, data: Path, out: Path, *, layout: str, correction: dict) -> dict:
    """The corrected run's config.json entries: the source run's model, and where it came from
    (``correction``'s ``from`` and ``bundle`` paths are written relative to ``out``)."""
    classes = source.classes
    return {
        "arch": source.config["arch"],
        "num_classes": len(classes),
        "feature_layer": source.feature_layer,
        "image_size": source.image_size,
        "data": {"path": relative(data, out), "layout": layout, "classes": classes},
        "correction": {
            **correction,
            "from": relative(correction["from"], out),
            "bundle": relative(correction["bundle"], out),
        },
    }


def _epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    feedback: dict[str, tuple] | None,
    *,
    rrr_weight: float,
    rng: np.random.Generator,
    device: torch.device,
    desc: str,
) -> tuple[float, float]:
    """One pass; with ``feedback`` (rrr) each step adds the penalty on a batch of them."""
    model.train()
    ids = sorted(feedback) if feedback else []
    total, correct, loss_sum = 0, 0, 0.0
    bar = tqdm(loader, desc=desc, unit="batch", leave=False)
    for batch in bar:
        images = batch["image"].to(device)
        labels = batch["label"].to(device)
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        if ids:
            chosen = rng.choice(len(ids), size=min(len(ids), len(labels)), replace=False)
            picked = [feedback[ids[k]] for k in chosen]
            fb_images = torch.stack([p[0] for p in picked]).to(device)
            fb_masks = torch.cat([p[1] for p in picked]).to(device, torch.float32)
            fb_labels = torch.tensor([p[2] for p in picked], device=device)
            penalty, log_probs = _rrr_penalty(model, fb_images, fb_masks)
            loss = loss + F.nll_loss(log_probs, fb_labels) + rrr_weight * penalty
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += len(labels)
        correct += int((logits.argmax(1) == labels).sum())
        loss_sum += float(loss.detach()) * len(labels)
        bar.set_postfix(loss=f"{loss_sum / total:.3f}", acc=f"{correct / total:.3f}")
    return loss_sum / total, correct / total
