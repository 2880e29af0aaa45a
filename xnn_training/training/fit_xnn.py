"""Train every class's xNN at once on a DNN's features: :func:`train_xnn` (``xnaming train xnn``).

:func:`fit_xnn` is the training itself, on feature and logit tensors in memory (what the
benchmark times); :func:`train_xnn` reads a DNN run, extracts the features of the training
and test images once, trains, writes the run and its fidelity report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from xnn_training.data.datasets import ImageDataset, open_dataset
from xnn_training.devices import loader_options, resolve_device
from xnn_training.nets.losses import (
    LossWeights,
    concept_alignment,
    faithfulness,
    pull_away,
    sparse_reconstruction,
)
from xnn_training.nets.xnn import XNN
from xnn_training.training.fidelity import fidelity_report, print_fidelity, write_fidelity
from xnn_training.training.fit_dnn import cosine_lr
from xnn_training.training.run_writer import RunWriter
from xnn_training.training.runs import WEIGHTS, XNN_FORMAT, DNNRun, load_dnn_run, relative, sha256

__all__ = [
    "Alignment",
    "ConceptTargets",
    "extract_features",
    "fit_xnn",
    "normalisation",
    "refit_stuck_classes",
    "train_xnn",
    "training_rmse_share",
]

EPOCHS = 150
BATCH_SIZE = 128
STUCK_RMSE = 0.02
"""A class's xNN whose training RMSE exceeds this share of the class's training score range,
and :data:`STUCK_FACTOR` times the median class's, is stuck in a poor optimum (one class in a
few, a different one for another seed; see :func:`refit_stuck_classes`)."""
STUCK_FACTOR = 3.0
"""Stuck is worse than the other classes, not merely short of training: a short schedule that
leaves every class above :data:`STUCK_RMSE` restarts none."""
RESTARTS = 2
"""Fresh starts (seeds ``seed + 1``, ...) a stuck class gets by default."""
RECONSTRUCTED_FEATURES = 512


@dataclass(frozen=True)
class ConceptTargets:
    """The concept term's data (:func:`xnn_training.nets.losses.concept_alignment`).

    ``features`` (M, d): the DNN features of the annotated images; ``groups`` (C, k, G)
    one-hot, the group of each X-feature; ``targets`` (C, M, G), in logit units, what each group
    should contribute on each image; ``mask`` (C, M, G), which entries count; ``weight``, the
    term's weight beside faithfulness (1).
    """

    features: torch.Tensor
    groups: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    weight: float = 1.0


@dataclass(frozen=True)
class Alignment:
    """What ``train_xnn`` needs to align an xNN with named concepts (:mod:`.align`).

    ``warm_start(xnn, scale, mean, std)`` fills a new (normalised) xNN from the trained one;
    ``concepts`` is the concept term's data; ``identity`` joins the run's settings (a change
    starts the run anew); ``config`` joins config.json (``concepts``: per class, which
    X-feature carries which name).
    """

    warm_start: Callable[[XNN, float, torch.Tensor, torch.Tensor], None]
    concepts: ConceptTargets
    identity: dict
    config: dict


def fit_xnn(
    features: torch.Tensor,
    targets: torch.Tensor,
    *,
    k: int = 5,
    hidden: Sequence[int] = (64, 16),
    weights: LossWeights | None = None,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    lr: float = 1e-3,
    seed: int = 0,
    reconstructed_features: int = RECONSTRUCTED_FEATURES,
    xnn: XNN | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    start_epoch: int = 0,
    after_epoch: Callable[[int, dict[str, float]], None] | None = None,
    device: str | torch.device | None = None,
    concepts: ConceptTargets | None = None,
) -> XNN:
    """Train the vectorised xNN of all classes to regress ``targets`` from ``features``.

    Parameters
    ----------
    features
        (N, d) DNN features of the training images (non-negative: taken after a ReLU).
    targets
        (N, C) the DNN's logits of the explained classes.
    k, hidden
        X-features per class, encoder hidden widths.
    weights
        Loss weights (default :class:`LossWeights`).
    epochs, batch_size, lr
        Adam (weight decay 1e-4, as SRAE), cosine learning-rate decay.
    reconstructed_features
        The reconstruction term is a mean over the d features; when d is larger, each step
        estimates it (without bias) on this many features drawn at random, which keeps the
        decoder's cost independent of d.
    xnn, optimizer, start_epoch
        Continue a training (resume from a checkpoint).
    after_epoch
        Called with (finished epoch count, mean loss terms) after every epoch.
    device
        Where to train: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``
        (:func:`xnn_training.devices.resolve_device`); default: where ``xnn`` is, else the
        CPU. The features are moved there once; each batch is indexed on the device.
    concepts
        Add the concept term: each step, a batch of the annotated images' grouped score terms
        pulled toward their targets (``xnaming train xnn --namings``). ``xnn`` then starts
        from a trained xNN: pass it unfolded (:meth:`XNN.unfold_normalisation`).

    Returns
    -------
    XNN
        In eval mode, reading raw features and giving raw logits (the normalisation used
        during training is folded into its weights).
    """
    weights = weights or LossWeights()
    features, targets = features.float(), targets.float()
    if features.dim() != 2 or targets.dim() != 2 or len(features) != len(targets):
        raise ValueError(
            f"features (N, d) and targets (N, C) expected, got {tuple(features.shape)} and "
            f"{tuple(targets.shape)}"
        )
    if (features < 0).any():
        raise ValueError("features: expected non-negative values (a layer after its ReLU)")
    n, d = features.shape
    # Normalise: features by one global scale, each class's logits to mean 0 and std 1, so
    # the loss weights mean the same for any network; folded back into the weights at the end.
    scale, mean, std = normalisation(features, targets)
    inputs, goals = features / scale, (targets - mean) / std

    generator = torch.Generator().manual_seed(seed)
    if device is not None:
        device = resolve_device(device)
    elif xnn is not None:
        device = xnn.head_weight.device
    else:
        device = torch.device("cpu")
    if xnn is None:
        torch.manual_seed(seed)
        xnn = XNN(d, targets.shape[1], k, hidden)
    xnn.to(device)
    if optimizer is None:
        optimizer = torch.optim.Adam(xnn.parameters(), lr=lr, weight_decay=1e-4)
    inputs, goals = inputs.to(device), goals.to(device)
    if concepts is not None:  # in the same normalised units: a term's share of (logit / std)
        c_inputs = (concepts.features.float() / scale).to(device)
        c_groups = concepts.groups.float().to(device)
        c_targets = (concepts.targets.float() / std[:, None, None]).to(device)
        c_mask = concepts.mask.float().to(device)
    names = ("pred", "rec", "pull_away") + (("concept",) if concepts is not None else ())
    xnn.train()
    bar = tqdm(range(start_epoch, epochs), desc="xnn", unit="epoch", initial=start_epoch,
               total=epochs)  # fmt: skip
    for epoch in bar:
        generator.manual_seed(seed * 1009 + epoch)  # batches: a function of the epoch
        torch.manual_seed(seed * 1009 + epoch)  # dropout too
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(lr, epoch, epochs)
        # On the device: no synchronisation per step (the means are read once per epoch).
        sums = {name: torch.zeros((), device=device) for name in names}
        order = torch.randperm(n, generator=generator)
        for batch in order.split(batch_size):
            rows = batch.to(device, non_blocking=True)
            f, y = inputs[rows], goals[rows]
            columns = None
            if d > reconstructed_features:
                columns = torch.randperm(d, generator=generator)[:reconstructed_features]
                columns = columns.to(device, non_blocking=True)
            x = xnn.encode(f)
            terms = {
                "pred": faithfulness(xnn.score(x), y),
                "rec": sparse_reconstruction(
                    xnn.reconstruct(x, columns), f if columns is None else f[:, columns],
                    weights.q,
                ),
                "pull_away": pull_away(xnn.terms(x), weights.pull_away_over),
            }  # fmt: skip
            # Sum over classes: each class's xNN gets the gradient it would get alone.
            loss = sum(getattr(weights, name) * value.sum() for name, value in terms.items())
            if concepts is not None:
                rows = torch.randperm(len(c_inputs), generator=generator)[:batch_size]
                rows = rows.to(device, non_blocking=True)
                terms["concept"] = concept_alignment(
                    xnn.terms(xnn.encode(c_inputs[rows])), c_groups, c_targets[:, rows],
                    c_mask[:, rows],
                )  # fmt: skip
                loss = loss + concepts.weight * terms["concept"].sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for name, value in terms.items():
                sums[name] += value.detach().mean() * (len(batch) / n)
        means = {name: float(value) for name, value in sums.items()}
        bar.set_postfix({name: f"{value:.4f}" for name, value in means.items()})
        if after_epoch is not None:
            after_epoch(epoch + 1, means)
    bar.close()
    xnn.eval()
    xnn.fold_normalisation(scale, mean.to(device), std.to(device))
    return xnn


@torch.no_grad()
def training_rmse_share(xnn: XNN, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each class's RMSE of the xNN score against ``targets`` (N, C), as a share of the class's
    score range (max - min of its targets): (C,), on the CPU."""
    device = xnn.head_weight.device
    scores = torch.cat([xnn(f.to(device))["scores"].cpu() for f in features.float().split(4096)])
    rmse = (scores - targets.float()).pow(2).mean(0).sqrt()
    return rmse / (targets.max(0).values - targets.min(0).values).float().clamp_min(1e-8)


def refit_stuck_classes(
    xnn: XNN,
    features: torch.Tensor,
    targets: torch.Tensor,
    *,
    restarts: int = RESTARTS,
    seed: int = 0,
    **options,
) -> dict[int, tuple[float, float]]:
    """Train the classes whose xNN is stuck again from fresh starts, keeping the better fit.

    The xNNs of the classes are independent; now and then one lands in a poor optimum and fits
    its class's training scores several times worse than the others (6.9% of the score range
    against under 1% on toybirds), a different class for another seed. Each class whose
    training RMSE exceeds :data:`STUCK_RMSE` of its training score range and
    :data:`STUCK_FACTOR` times the median class's is trained again, alone with the other stuck
    classes, from seed ``seed + r`` (r = 1..restarts), and keeps whichever start fits its
    training scores best. Chosen on the training images only.

    Parameters
    ----------
    xnn
        The trained xNN (after :func:`fit_xnn`); changed in place.
    features, targets
        The training features (N, d) and logits (N, C) it was trained on.
    restarts
        Fresh starts at most (0: none).
    seed
        The seed of the first training.
    **options
        The other settings of :func:`fit_xnn` (``k``, ``hidden``, ``weights``, ``epochs``, ...).

    Returns
    -------
    dict
        Class index -> (RMSE share before, after) for every class found stuck.
    """
    if restarts < 0:
        raise ValueError(f"restarts: expected 0 or more fresh starts, got {restarts}")
    share = training_rmse_share(xnn, features, targets)
    limit = max(STUCK_RMSE, STUCK_FACTOR * float(share.median()))
    found = {int(c): (float(share[c]), float(share[c])) for c in (share > limit).nonzero()}
    for r in range(1, restarts + 1):
        stuck = [int(c) for c in (share > limit).nonzero()]
        if not stuck:
            break
        fresh = fit_xnn(features, targets[:, stuck], seed=seed + r, **options)
        fresh_share = training_rmse_share(fresh, features, targets[:, stuck])
        for j, c in enumerate(stuck):
            if fresh_share[j] < share[c]:
                _copy_class(fresh, j, xnn, c)
                share[c] = fresh_share[j]
                found[c] = (found[c][0], float(share[c]))
    return found


@torch.no_grad()
def _copy_class(source: XNN, j: int, target: XNN, c: int) -> None:
    """Class ``j``'s xNN of ``source`` becomes class ``c``'s of ``target`` (every parameter
    is stacked by class on its first dimension)."""
    mine = dict(target.named_parameters())
    for name, value in source.named_parameters():
        mine[name][c].copy_(value[j].to(mine[name].device))


def normalisation(
    features: torch.Tensor, targets: torch.Tensor
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """What :func:`fit_xnn` trains in: features divided by one global scale, each class's
    logits to mean 0 and std 1 (so the loss weights mean the same for any network)."""
    scale = float(features.float().pow(2).mean().sqrt().clamp_min(1e-8))
    return scale, targets.float().mean(0), targets.float().std(0).clamp_min(1e-6)


@torch.no_grad()
def extract_features(
    extractor: torch.nn.Module,
    dataset: ImageDataset,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    loader_workers: int | None = None,
    desc: str = "",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, d) and logits (N, classes) of every image of ``dataset``, in order, on the
    CPU; ``extractor`` must be on ``device``, ``loader_workers`` as in :func:`train_xnn`."""
    device = torch.device(device)
    features, logits = [], []
    loader = DataLoader(dataset, batch_size=batch_size, **loader_options(device, loader_workers))
    for batch in tqdm(loader, desc=desc or "features"):
        out = extractor(batch["image"].to(device, non_blocking=True))
        features.append(out["features"].cpu())
        logits.append(out["logits"].cpu())
    return torch.cat(features), torch.cat(logits)


def train_xnn(
    dnn: str | Path,
    out: str | Path,
    *,
    k: int = 5,
    classes: Sequence[str] | None = None,
    hidden: Sequence[int] = (64, 16),
    weights: LossWeights | None = None,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    lr: float = 1e-3,
    seed: int = 0,
    data: str | Path | None = None,
    device: str = "auto",
    loader_workers: int | None = None,
    overwrite: bool = False,
    checkpoint_every: int = 1,
    reconstructed_features: int = RECONSTRUCTED_FEATURES,
    restarts: int = RESTARTS,
    alignment: Alignment | None = None,
) -> Path:
    """Train one xNN per class of a DNN run and write an xNN run with its fidelity report.

    Parameters
    ----------
    dnn
        The DNN run directory (``xnaming train dnn``).
    out
        The xNN run directory; an unfinished run with the same settings is resumed.
    k
        X-features per class (the paper: 5).
    classes
        Explain only these classes (names); default: all the DNN's classes.
    hidden, weights, epochs, batch_size, lr, seed
        See :func:`fit_xnn`.
    data
        The data set; default: the one the DNN run was trained on.
    device
        ``"auto"`` (a GPU when there is one), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``
        (:func:`xnn_training.devices.resolve_device`): feature extraction and training.
    loader_workers
        DataLoader processes for the feature extraction; default 0 on the CPU, 2 on a GPU.
    overwrite
        Replace whatever ``out`` holds.
    reconstructed_features
        See :func:`fit_xnn`.
    restarts
        Fresh starts for a class whose xNN is stuck in a poor fit (:func:`refit_stuck_classes`;
        0: none). Not for an alignment, whose warm start is kept.
    checkpoint_every
        Save a checkpoint every this many epochs (and at the end). The default, every epoch,
        loses no finished epoch when a run is interrupted; raise it for very large runs, whose
        checkpoint (about 1 GB for 200 classes) costs more than an epoch.
    alignment
        Start from a trained xNN and add the concept term (``xnaming train xnn --namings``,
        :func:`xnn_training.training.align.align_xnn`).

    Returns
    -------
    Path
        ``out``, holding weights.safetensors, config.json, classes.json, fidelity.csv.
    """
    out = Path(out)
    weights = weights or LossWeights()
    device = resolve_device(device)
    dnn_run = load_dnn_run(dnn, device)
    names = _explained_classes(dnn_run, classes)
    data_path = Path(data) if data is not None else dnn_run.data_path
    dnn_sha = sha256(dnn_run.path / WEIGHTS)
    training = {
        "dnn_sha256": dnn_sha,
        "classes": names,
        "k": k,
        "hidden": list(hidden),
        "loss": asdict(weights),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "reconstructed_features": reconstructed_features,
        "restarts": restarts if alignment is None else 0,
        "data": str(data_path.resolve()),
        **({"alignment": alignment.identity} if alignment is not None else {}),
    }
    writer = RunWriter(out, training, run_format=XNN_FORMAT, overwrite=overwrite)
    if writer.finished:
        return out
    tensors = _dnn_outputs(
        dnn_run, data_path, writer.scratch("features.safetensors"),
        device=device, loader_workers=loader_workers,
    )  # fmt: skip
    columns = torch.tensor([dnn_run.classes.index(name) for name in names])

    torch.manual_seed(seed)
    xnn = XNN(tensors["train.features"].shape[1], len(names), k, hidden)
    train_logits = tensors["train.logits"][:, columns]
    if alignment is not None:
        alignment.warm_start(xnn, *normalisation(tensors["train.features"], train_logits))
    xnn.to(device)
    optimizer = torch.optim.Adam(xnn.parameters(), lr=lr, weight_decay=1e-4)
    start = writer.resume(xnn, optimizer)

    def after_epoch(done: int, terms: dict[str, float]) -> None:
        writer.history.append({"epoch": done, **terms})
        if done % checkpoint_every == 0 or done == epochs:
            writer.checkpoint()

    xnn = fit_xnn(
        tensors["train.features"], train_logits, k=k, hidden=hidden,
        weights=weights, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
        reconstructed_features=reconstructed_features, xnn=xnn, optimizer=optimizer,
        start_epoch=start, after_epoch=after_epoch,
        concepts=alignment.concepts if alignment is not None else None,
    )  # fmt: skip

    refit = {}
    if alignment is None and restarts:
        refit = refit_stuck_classes(
            xnn, tensors["train.features"], train_logits, restarts=restarts, seed=seed, k=k,
            hidden=hidden, weights=weights, epochs=epochs, batch_size=batch_size, lr=lr,
            reconstructed_features=reconstructed_features, device=device,
        )  # fmt: skip
        for c, (before, after) in refit.items():
            print(f"xnaming train xnn: {names[c]}'s xNN fit its training scores to "
                  f"{100 * before:.1f}% of their range (stuck); fresh starts: "
                  f"{100 * after:.1f}%")  # fmt: skip
    xnn.cpu()  # the report and the run are computed and written from the CPU's tensors
    report = fidelity_report(
        xnn, tensors["test.features"], tensors["test.logits"], tensors["test.labels"],
        columns, names,
    )  # fmt: skip
    write_fidelity(report, out / "fidelity.csv")
    config = {
        "dnn_run": {"path": relative(dnn_run.path, out), "sha256": dnn_sha},
        "feature_layer": dnn_run.feature_layer,
        "xnn": {
            "in_features": xnn.in_features,
            "k": k,
            "hidden": list(hidden),
            "dropout": xnn.dropout.p,
        },
        "data": {"path": relative(data_path, out)},
        # Training RMSE as a share of the score range, before and after the fresh starts.
        "stuck_classes": {names[c]: list(fit) for c, fit in refit.items()},
        **(alignment.config if alignment is not None else {}),
    }
    writer.finish(xnn, config, names)
    print_fidelity(report)
    print(f"xnaming train xnn: wrote {out}/ (weights.safetensors, config.json, fidelity.csv)")
    return out


def _explained_classes(dnn_run: DNNRun, classes: Sequence[str] | None) -> list[str]:
    """The classes to explain (default: all the DNN's), each checked to be one of the DNN's."""
    names = list(dnn_run.classes) if classes is None else [str(c) for c in classes]
    unknown = [name for name in names if name not in dnn_run.classes]
    if unknown:
        raise ValueError(
            f"classes: {unknown} are not classes of the DNN run {dnn_run.path} "
            f"(its classes: {', '.join(dnn_run.classes)})"
        )
    return names


def _dnn_outputs(
    dnn_run: DNNRun,
    data_path: Path,
    cache: Path,
    *,
    device: torch.device,
    loader_workers: int | None,
) -> dict[str, torch.Tensor]:
    """Features, logits (all the DNN's classes, in its logit order) and labels of both splits.

    Extracted once and kept in ``cache``, so a resumed run skips the extraction. Keys:
    ``"{split}.features"``, ``"{split}.logits"``, ``"{split}.labels"`` for train and test.
    """
    if cache.is_file():
        return load_file(str(cache))
    extractor = dnn_run.extractor()
    tensors = {}
    for split in ("train", "test"):
        dataset = open_dataset(data_path, split, dnn_run.classes, dnn_run.image_size)
        f, logits = extract_features(
            extractor, dataset, device=device, loader_workers=loader_workers,
            desc=f"{split} features",
        )  # fmt: skip
        tensors |= {f"{split}.features": f, f"{split}.logits": logits,
                    f"{split}.labels": dataset.labels}  # fmt: skip
    save_file(tensors, str(cache))
    return tensors
