"""X-features aligned with the annotators' concepts: ``xnaming train xnn --namings --bundle``.

The annotators named the maps of the data set's feedback split. :func:`align_xnn` trains a new
xNN for the same classifier in which, per class, X-features carry the concepts the annotator
(or the consensus of all annotators) used in that class, and the remaining *free* X-features
(at least one) carry the evidence nobody named. It starts from the xNN the bundle was
explained with and adds one term to the xNN's own losses (faithfulness, sparse reconstruction,
pull-away, as before):

- *Warm start*: every X-feature of the old xNN is kept in its place and carries the verdict
  most of its judged feedback maps got (a concept, or none: free); a concept no X-feature
  carries gets a fresh one, silent at first.
- *Concept term* (:func:`xnn_training.nets.losses.concept_alignment`): on every judged feedback
  image, the X-features carrying a concept should together contribute what the maps named with
  that concept contributed, and the free X-features together the rest of the old score; a
  squared error in the xNN's normalised score units, weight 1 beside faithfulness.

docs/training.md says why this loss and not another. ``config.json`` gains ``concepts``: per
class, X-feature index (a string) -> concept name; an X-feature not listed is free ("other").
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from analysis.namers.verdicts import concept_verdicts
from xnn_training.data.datasets import open_dataset
from xnn_training.files import sha256
from xnn_training.nets.losses import LossWeights
from xnn_training.nets.xnn import XNN
from xnn_training.training.feedback import read_feedback
from xnn_training.training.fit_xnn import Alignment, ConceptTargets, extract_features, train_xnn
from xnn_training.training.runs import WEIGHTS, load_dnn_run, load_xnn_run, relative

__all__ = ["ALIGN_EPOCHS", "FREE", "align_xnn"]

ALIGN_EPOCHS = 60
"""Epochs from the warm start (the first xNN trains 150 from scratch)."""
FREE = 1
"""Free X-features per class at least (evidence nobody named)."""


def _plan(activations: pd.DataFrame, classes: list[str], k_old: int, free: int):
    """Per class: its concepts (most named first) and the concept each new X-feature carries
    (None: free); and the new k.

    Every old X-feature is kept in its place (so the warm start scores every image as the old
    xNN did) and carries the verdict most of its judged feedback maps got: a concept, or none
    (free) when they were mostly left unnamed or discarded. A concept no X-feature carries that
    way gets a fresh X-feature of its own; fresh free ones follow until ``free`` are free.
    """
    concepts, carried = {}, {}
    for name in classes:
        rows = activations[activations["category"] == name]
        named = rows[rows["verdict"] != ""]
        order = named["verdict"].value_counts()
        concepts[name] = sorted(order.index, key=lambda c: (-order[c], c))
        carries: list[str | None] = []
        for k in range(k_old):
            said = rows.loc[rows["x_feature"] == k, "verdict"].value_counts()
            best = sorted(said.index, key=lambda v: (-said[v], v))[0] if len(said) else ""
            carries.append(best or None)
        carries += [c for c in concepts[name] if c not in carries]  # fresh, one per concept
        carries += [None] * max(0, free - carries.count(None))
        carried[name] = carries
    k = max(len(c) for c in carried.values())
    for name in classes:
        carried[name] += [None] * (k - len(carried[name]))
    return concepts, carried, k


def _warm_start(old: XNN):
    """The function that fills a new xNN (normalised) with ``old`` (folded): its X-features in
    their places, the new ones after them fresh and silent in the score at first."""

    @torch.no_grad()
    def fill(new: XNN, scale: float, mean: torch.Tensor, std: torch.Tensor) -> None:
        start = XNN(old.in_features, old.classes, old.k, old.hidden, old.dropout.p)
        start.load_state_dict(old.state_dict())
        start.unfold_normalisation(scale, mean, std)
        for layer_new, layer_old in zip(new.encoder[:-1], start.encoder[:-1], strict=True):
            layer_new.load_state_dict(layer_old.state_dict())
        for layer_new, layer_old in zip(new.decoder[1:], start.decoder[1:], strict=True):
            layer_new.load_state_dict(layer_old.state_dict())
        kept = old.k
        new.encoder[-1].weight[:, :kept] = start.encoder[-1].weight
        new.encoder[-1].bias[:, :kept] = start.encoder[-1].bias
        new.decoder[0].weight[:, :, :kept] = start.decoder[0].weight
        new.decoder[0].bias.copy_(start.decoder[0].bias)
        new.head_weight.zero_()
        new.head_weight[:, :kept] = start.head_weight
        new.head_bias.copy_(start.head_bias)

    return fill


def align_xnn(
    dnn: str | Path,
    out: str | Path,
    *,
    namings: str | Path,
    bundle: str | Path,
    annotator: str | None = None,
    free: int = FREE,
    epochs: int = ALIGN_EPOCHS,
    lr: float | None = None,
    concept_weight: float = 1.0,
    seed: int = 0,
    device: str = "auto",
    loader_workers: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Train an xNN whose X-features carry the annotators' concepts.

    Parameters
    ----------
    dnn
        The DNN run the feedback bundle was explained for.
    out
        The new xNN run directory (an ordinary xNN run, plus ``concepts`` in config.json).
    namings
        The namings CSV of ``bundle``'s maps (``xnaming collect`` or ``xnaming simulate``).
    bundle
        The map bundle of the feedback split (``xnaming explain --split feedback``); the xNN it
        was explained with is the warm start.
    annotator
        Align with this annotator's concepts; default: the consensus (:func:`concept_verdicts`).
    free
        Free X-features per class at least.
    epochs, lr, concept_weight, seed
        Training from the warm start (``lr``: default the first xNN's); the concept term's
        weight.
    device, loader_workers, overwrite
        As ``xnaming train xnn``.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    ValueError
        Namings that name no map ("nothing to align"), an unknown annotator, a bundle of
        another split or classifier, namings of another bundle, ``free`` below 1.
    """
    if free < 1:
        raise ValueError(f"free: expected at least 1 free X-feature per class, got {free}")
    dnn = Path(dnn)
    content, table = read_feedback(namings, bundle, dnn_weights=dnn / WEIGHTS)
    verdicts = concept_verdicts(table, annotator)
    if not (verdicts != "").any():
        raise ValueError(
            "namings: no map is named with a concept"
            + (f" by {annotator}" if annotator else "")
            + ", so there is nothing to align; nothing written"
        )
    xnn_path = (content.manifest.get("xnn_run") or {}).get("path")
    if not xnn_path:
        raise ValueError(f"bundle: {bundle}'s manifest names no xNN run to start from")
    source = load_xnn_run((content.root / xnn_path).resolve(), dnn=load_dnn_run(dnn))
    activations = content.activations.merge(verdicts.reset_index(), on="activation_id", how="left")
    # Only images whose every significant map was judged: their targets are whole.
    unjudged = activations.loc[activations["verdict"].isna(), "image_id"]
    activations = activations[~activations["image_id"].isin(unjudged)].copy()
    activations["x_feature"] = activations["x_feature"].astype(int)
    concepts, carried, k = _plan(activations, source.classes, source.xnn.k, free)
    targets = _concept_targets(activations, source, concepts, carried, k)
    old = source.config
    identity = {
        "from": str(source.path.resolve()),
        "namings_sha256": sha256(namings),
        "bundle": str(Path(bundle).resolve()),
        "annotator": annotator,
        "free": free,
        "concept_weight": concept_weight,
    }
    config = {
        "concepts": {
            name: {str(j): concept for j, concept in enumerate(carried[name]) if concept}
            for name in source.classes
        },
        "alignment": {"annotator": annotator or "consensus", "free": free,
                      "from": relative(source.path, Path(out))},  # as the runs' other paths
    }  # fmt: skip
    alignment = Alignment(
        warm_start=_warm_start(source.xnn),
        concepts=ConceptTargets(*targets, weight=concept_weight),
        identity=identity,
        config=config,
    )
    training = old.get("training", {})
    kept = {key: training[key] for key in ("batch_size", "lr", "reconstructed_features")
            if key in training}  # fmt: skip
    if "loss" in training:
        kept["weights"] = LossWeights(**training["loss"])
    if lr is not None:
        kept["lr"] = lr
    return train_xnn(
        dnn, out, k=k, classes=source.classes, hidden=old["xnn"]["hidden"], epochs=epochs,
        seed=seed, data=source.dnn.data_path, device=device, loader_workers=loader_workers,
        overwrite=overwrite, alignment=alignment, **kept,
    )  # fmt: skip


def _concept_targets(
    activations: pd.DataFrame,
    source,
    concepts: dict[str, list[str]],
    carried: dict[str, list[str | None]],
    k: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(features, groups, targets, mask) of :class:`ConceptTargets` on the judged feedback
    images.

    The targets split the old xNN's whole score on an image: a significant map named with a
    concept gives its term to that concept's group; every other term (maps left unnamed or
    discarded, X-features too small to be shown) goes to the free group. The groups then sum
    to the old score, so faithfulness and the concept term ask for the same total.
    """
    run = source.dnn
    classes = source.classes
    feedback = open_dataset(run.data_path, "feedback", run.classes, run.image_size)
    index = {s.image_id: i for i, s in enumerate(feedback.samples)}
    images = sorted(set(activations["image_id"]) & set(index))
    subset = torch.utils.data.Subset(feedback, [index[i] for i in images])
    features, _ = extract_features(run.extractor(), subset, desc="feedback features")
    with torch.no_grad():
        old_terms = source.xnn.terms(source.xnn.encode(features))  # (C, M, k_old)
    free = k  # group index of the free X-features: after at most k concepts
    groups = torch.zeros(len(classes), k, k + 1)
    for c, name in enumerate(classes):
        for j, concept in enumerate(carried[name]):
            groups[c, j, concepts[name].index(concept) if concept else free] = 1
    targets = torch.zeros(len(classes), len(images), k + 1)
    mask = torch.zeros(len(classes), len(images), k + 1, dtype=torch.bool)
    row = {image: m for m, image in enumerate(images)}
    for (image, name), rows in activations.groupby(["image_id", "category"]):
        if image not in row or name not in classes:
            continue
        c, m = classes.index(name), row[image]
        words = concepts[name]
        terms = old_terms[c, m].clone()
        for verdict, feature in zip(rows["verdict"], rows["x_feature"], strict=True):
            if verdict in words:
                targets[c, m, words.index(verdict)] += terms[feature]
                terms[feature] = 0.0
        targets[c, m, free] = terms.sum()
        mask[c, m, : len(words)] = True
        mask[c, m, free] = True
    return features, groups, targets, mask
