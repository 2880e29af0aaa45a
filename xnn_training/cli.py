"""``xnaming data``, ``xnaming train`` and ``xnaming explain``: argument parsers and handlers.

Torch and the training code are imported inside the handlers, so ``xnaming --help`` stays
instant. Errors are reported by ``xnaming``'s one error boundary (:mod:`xnaming.errors`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xnn_training.defaults import (
    CORRECTION_EPOCHS,
    CORRECTION_LR,
    FEEDBACK_SHARE,
    SIGNIFICANT_SHARE,
    TOYBIRDS_CLASSES,
    TOYBIRDS_IMAGE_SIZE,
    TOYBIRDS_PER_CLASS,
)

__all__ = [
    "configure_data",
    "configure_evaluate",
    "configure_explain",
    "configure_train",
    "configure_why",
]


DEVICE_HELP = "auto (a GPU when there is one; the default), cpu, cuda or cuda:N"


def _classes(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _layers(text: str) -> tuple[str, ...]:
    if text.strip().lower() == "none":
        return ()
    layers = tuple(name.strip() for name in text.split(",") if name.strip())
    if not layers:
        raise argparse.ArgumentTypeError("expected layer names, or 'none'")
    return layers


def _threads(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


def configure_data(parser: argparse.ArgumentParser) -> None:
    """``xnaming data toybirds --out DIR ...`` and ``xnaming data check DIR``."""
    sub = parser.add_subparsers(dest="data_command", metavar="KIND", required=True)
    toy = sub.add_parser("toybirds", help="generate the toybirds data set")
    toy.add_argument("--out", type=Path, required=True, help="directory to write")
    toy.add_argument(
        "--classes",
        type=int,
        default=TOYBIRDS_CLASSES,
        help=f"number of species (default {TOYBIRDS_CLASSES})",
    )
    toy.add_argument(
        "--per-class",
        type=int,
        default=TOYBIRDS_PER_CLASS,
        help=f"images per species ({TOYBIRDS_PER_CLASS})",
    )
    toy.add_argument(
        "--size",
        type=int,
        default=TOYBIRDS_IMAGE_SIZE,
        help=f"image side in pixels ({TOYBIRDS_IMAGE_SIZE})",
    )
    toy.add_argument("--seed", type=int, default=0, help="random seed (0)")
    toy.add_argument(
        "--shortcut", metavar="CATEGORY",
        help="plant a shortcut: a cue on the background of every image of this class "
        "(its name or number), so a classifier can be right for the wrong reason",
    )  # fmt: skip
    toy.add_argument(
        "--feedback-share", type=float, default=FEEDBACK_SHARE, metavar="SHARE",
        help=f"share of each class's training images in the feedback split, the images "
        f"annotators name to correct the classifier; train dnn leaves them out "
        f"({FEEDBACK_SHARE:g}; 0: none)",
    )  # fmt: skip
    toy.set_defaults(handler=_run_toybirds)
    feedback = sub.add_parser(
        "feedback", help="name the feedback split of a CUB-200-2011 or ImageFolder tree"
    )
    feedback.add_argument("path", type=Path, help="CUB-200-2011 or ImageFolder directory")
    how = feedback.add_mutually_exclusive_group(required=True)
    how.add_argument("--share", type=float, help="this share of each class's training images")
    how.add_argument("--list", type=Path, help="a text file: one training image id a line")
    feedback.add_argument("--seed", type=int, default=0, help="seed of the --share draw (0)")
    feedback.set_defaults(handler=_run_feedback)
    check = sub.add_parser("check", help="read a local data set and summarise it")
    check.add_argument("path", type=Path, help="toybirds, CUB-200-2011 or ImageFolder directory")
    check.add_argument("--classes", type=_classes, help="comma-separated class subset")
    check.set_defaults(handler=_run_check)


def _run_toybirds(args: argparse.Namespace) -> int:
    from xnn_training.data.toybirds import make_toybirds

    out = make_toybirds(
        args.out,
        classes=args.classes,
        per_class=args.per_class,
        size=args.size,
        seed=args.seed,
        shortcut=args.shortcut,
        feedback_share=args.feedback_share,
    )
    cues = ", cues/" if args.shortcut else ""
    print(
        f"xnaming data: wrote {out}/ (images/, masks/{cues}, images.csv, parts.csv, toybirds.json)"
    )
    return 0


def _run_feedback(args: argparse.Namespace) -> int:
    from xnn_training.data.datasets import open_dataset, write_feedback_split

    ids = None if args.list is None else args.list.read_text().splitlines()
    out = write_feedback_split(args.path, share=args.share, seed=args.seed, ids=ids)
    images = len(open_dataset(args.path, "feedback"))
    print(f"xnaming data: wrote {out} ({images} training images moved to the feedback split)")
    return 0


def _run_check(args: argparse.Namespace) -> int:
    from xnn_training.data.datasets import SPLITS, open_dataset

    for split in SPLITS:
        try:
            dataset = open_dataset(args.path, split, args.classes)
        except ValueError:
            if split == "feedback":  # optional
                print("feedback: none")
                continue
            raise
        counts = dataset.labels.bincount(minlength=len(dataset.classes)).tolist()
        print(f"{split}: {len(dataset)} images, {len(dataset.classes)} classes ({dataset.layout})")
        for name, count in zip(dataset.classes, counts, strict=True):
            print(f"  {count:>6}  {name}")
    print(f"xnaming data: {args.path} reads as a data set; nothing written")
    return 0


def configure_train(parser: argparse.ArgumentParser) -> None:
    """``xnaming train dnn ...`` and ``xnaming train xnn ...``."""
    sub = parser.add_subparsers(dest="train_command", metavar="MODEL", required=True)
    dnn = sub.add_parser("dnn", help="train the classifier")
    dnn.add_argument("--data", type=Path, required=True, help="local data set directory")
    dnn.add_argument("--arch", default="toycnn", help="toycnn or a torchvision model name")
    dnn.add_argument("--out", type=Path, required=True, help="run directory to write")
    dnn.add_argument("--weights", type=Path, help="local pretrained weights (state dict file)")
    dnn.add_argument(
        "--epochs",
        type=int,
        help=f"default: 20 (toycnn), 10 (torchvision), {CORRECTION_EPOCHS} (with --from)",
    )
    dnn.add_argument("--batch-size", type=int, default=32)
    dnn.add_argument("--lr", type=float, help=f"default: 0.001, {CORRECTION_LR:g} with --from")
    dnn.add_argument("--image-size", type=int, help="default: toybirds' size, else 224")
    dnn.add_argument("--classes", type=_classes, help="comma-separated class subset")
    dnn.add_argument("--feature-layer", help="layer the xNN reads (default: fc6 after ReLU)")
    dnn.add_argument("--seed", type=int, default=0)
    dnn.add_argument("--device", default="auto", help=DEVICE_HELP)
    dnn.add_argument("--loader-workers", type=int, help="DataLoader processes (CPU 0, GPU 2)")
    dnn.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's)")
    dnn.add_argument("--overwrite", action="store_true", help="replace what --out holds")
    fix = dnn.add_argument_group(
        "correction", "fine-tune a trained DNN so it stops relying on the regions annotators "
        "discarded or named with a background word (docs/training.md)",
    )  # fmt: skip
    fix.add_argument("--from", dest="from_dnn", type=Path, metavar="DNN",
                     help="the DNN run to correct (needs --feedback and --bundle)")  # fmt: skip
    fix.add_argument("--feedback", type=Path, metavar="NAMINGS",
                     help="namings CSV of the feedback bundle's maps")  # fmt: skip
    fix.add_argument("--bundle", type=Path, help="map bundle of the feedback split (explain "
                     "--split feedback) for the --from DNN")  # fmt: skip
    fix.add_argument("--method", choices=["counterexamples", "rrr"], default="counterexamples",
                     help="counterexamples (default) or rrr (input-gradient penalty)")  # fmt: skip
    fix.add_argument(
        "--regions", choices=["annotated", "random", "shuffled"], default="annotated",
        help="the annotators' regions (default); random or shuffled: controls",
    )  # fmt: skip
    dnn.set_defaults(handler=_run_train_dnn)

    xnn = sub.add_parser("xnn", help="train the per-class explanation networks")
    xnn.add_argument("--dnn", type=Path, required=True, help="the DNN run directory")
    xnn.add_argument("--out", type=Path, required=True, help="xNN run directory to write")
    xnn.add_argument("--k", type=int, default=5, help="X-features per class (5)")
    xnn.add_argument("--classes", type=_classes, help="comma-separated classes to explain")
    xnn.add_argument("--hidden", type=lambda t: [int(v) for v in t.split(",")], default=[64, 16],
                     help="encoder hidden widths (64,16)")  # fmt: skip
    xnn.add_argument("--epochs", type=int, default=None, help="default 150")
    xnn.add_argument("--batch-size", type=int, default=None, help="default 128")
    xnn.add_argument("--lr", type=float, default=1e-3)
    xnn.add_argument("--a-pred", type=float, default=None, help="faithfulness weight")
    xnn.add_argument("--a-rec", type=float, default=None, help="sparse reconstruction weight")
    xnn.add_argument("--a-pt", type=float, default=None, help="pull-away weight")
    xnn.add_argument("--pull-away-over", choices=["features", "images"], default=None)
    xnn.add_argument("--reconstructed-features", type=int, default=None,
                     help="features reconstructed per step when d is larger (512)")  # fmt: skip
    xnn.add_argument("--data", type=Path, help="default: the DNN run's data set")
    xnn.add_argument("--seed", type=int, default=0)
    xnn.add_argument("--restarts", type=int, default=None,
                     help="fresh starts for a class whose xNN fits its training scores far "
                     "worse than the others' (above 2%% of their range; 2, 0: none)")  # fmt: skip
    xnn.add_argument("--device", default="auto", help=DEVICE_HELP)
    xnn.add_argument("--loader-workers", type=int, help="DataLoader processes (CPU 0, GPU 2)")
    xnn.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's)")
    xnn.add_argument("--overwrite", action="store_true", help="replace what --out holds")
    align = xnn.add_argument_group(
        "alignment", "X-features aligned with the concepts annotators named on the feedback "
        "split's maps: one per concept of each class, plus free ones (in progress: "
        "docs/training.md)",
    )  # fmt: skip
    align.add_argument("--namings", type=Path, help="namings CSV of the feedback bundle's maps")
    align.add_argument("--bundle", type=Path, help="map bundle of the feedback split (explain "
                       "--split feedback); its xNN is the warm start")  # fmt: skip
    align.add_argument("--annotator", help="align with this annotator's concepts (default: the "
                       "consensus of all)")  # fmt: skip
    align.add_argument("--free", type=int, default=1, help="free X-features per class, at least")
    xnn.set_defaults(handler=_run_train_xnn)


def _run_train_dnn(args: argparse.Namespace) -> int:
    given = [args.from_dnn, args.feedback, args.bundle]
    if any(v is not None for v in given) and any(v is None for v in given):
        raise ValueError("--from, --feedback and --bundle: give all three to correct a DNN")
    _threads(args)
    if args.from_dnn is not None:
        from xnn_training.training.correct import EPOCHS, LR, correct_dnn

        correct_dnn(
            args.from_dnn, args.out, namings=args.feedback, bundle=args.bundle, data=args.data,
            method=args.method, regions=args.regions, epochs=args.epochs or EPOCHS,
            batch_size=args.batch_size, lr=args.lr or LR, seed=args.seed,
            device=args.device, loader_workers=args.loader_workers, overwrite=args.overwrite,
        )  # fmt: skip
        return 0
    from xnn_training.training.fit_dnn import train_dnn

    train_dnn(
        args.data, args.out, arch=args.arch, weights=args.weights, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr or 1e-3, image_size=args.image_size,
        classes=args.classes, feature_layer=args.feature_layer, seed=args.seed,
        device=args.device, loader_workers=args.loader_workers, overwrite=args.overwrite,
    )  # fmt: skip
    return 0


def _run_train_xnn(args: argparse.Namespace) -> int:
    _threads(args)
    if (args.namings is None) != (args.bundle is None):
        raise ValueError("--namings and --bundle: give both to align the X-features")
    if args.namings is not None:
        from xnn_training.training.align import ALIGN_EPOCHS, align_xnn

        align_xnn(
            args.dnn, args.out, namings=args.namings, bundle=args.bundle,
            annotator=args.annotator, free=args.free, epochs=args.epochs or ALIGN_EPOCHS,
            seed=args.seed, device=args.device, loader_workers=args.loader_workers,
            overwrite=args.overwrite,
        )  # fmt: skip
        return 0
    from dataclasses import replace

    from xnn_training.nets.losses import LossWeights
    from xnn_training.training.fit_xnn import (
        BATCH_SIZE,
        EPOCHS,
        RECONSTRUCTED_FEATURES,
        RESTARTS,
        train_xnn,
    )

    given = {
        "pred": args.a_pred,
        "rec": args.a_rec,
        "pull_away": args.a_pt,
        "pull_away_over": args.pull_away_over,
    }
    weights = replace(LossWeights(), **{k: v for k, v in given.items() if v is not None})
    train_xnn(
        args.dnn, args.out, k=args.k, classes=args.classes, hidden=args.hidden,
        weights=weights, epochs=args.epochs or EPOCHS, batch_size=args.batch_size or BATCH_SIZE,
        lr=args.lr, seed=args.seed, data=args.data, device=args.device,
        loader_workers=args.loader_workers, overwrite=args.overwrite,
        reconstructed_features=args.reconstructed_features or RECONSTRUCTED_FEATURES,
        restarts=RESTARTS if args.restarts is None else args.restarts,
    )  # fmt: skip
    return 0


def configure_explain(parser: argparse.ArgumentParser) -> None:
    """``xnaming explain --dnn RUN --xnn XRUN --data DIR --out BUNDLE ...``."""
    parser.add_argument("--dnn", type=Path, required=True, help="the DNN run directory")
    parser.add_argument("--xnn", type=Path, required=True, help="the xNN run directory")
    parser.add_argument("--data", type=Path, required=True, help="local data set directory")
    parser.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    parser.add_argument(
        "--split", choices=["test", "train", "feedback"], default="test",
        help="which images to explain (test; feedback: those annotators name to correct the "
        "classifier)",
    )  # fmt: skip
    parser.add_argument(
        "--explain", choices=["true", "predicted"], default="true",
        help="explain the true class (default) or the DNN's prediction",
    )  # fmt: skip
    parser.add_argument("--layer", help="map layer (default: pool4 or its equivalent)")
    parser.add_argument(
        "--embedding-layers", type=_layers, metavar="LAYERS",
        help="comma-separated layers at or below the map layer whose activations under each "
        "hot spot embed the maps (default: two depths, e.g. toycnn features.4,features.9; "
        "'none': no embeddings.npz)",
    )  # fmt: skip
    parser.add_argument(
        "--threshold", type=float, default=SIGNIFICANT_SHARE,
        help=f"share of the positive score the significant X-features cover "
        f"({SIGNIFICANT_SHARE})",
    )  # fmt: skip
    parser.add_argument(
        "--contrastive", action="store_true", help="contrastive Excitation Backprop"
    )
    parser.add_argument(
        "--batch-size", type=int, help="images per forward pass (default: CPU 16, GPU 64)"
    )
    parser.add_argument("--limit", type=int, help="explain only the first N images")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument(
        "--workers", type=int, default=1,
        help="processes on this machine, each explaining its share (default 1; under "
        "torchrun each rank is one: use --nproc-per-node)",
    )  # fmt: skip
    parser.add_argument(
        "--loader-workers", type=int, help="DataLoader processes per rank (CPU 0, GPU 2)"
    )
    parser.add_argument(
        "--threads", type=int, default=0,
        help="torch CPU threads per process (0: torch's; with --workers: cores / workers)",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=float, default=30.0, metavar="MINUTES",
        help="how long ranks wait for each other (30)",
    )  # fmt: skip
    parser.set_defaults(handler=_run_explain)


def _run_explain(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from xnn_training.maps.explain import explain
    from xnn_training.maps.shards import launched_rank

    if args.timeout <= 0:
        raise ValueError(f"timeout: expected a positive number of minutes, got {args.timeout}")
    # A failed rank raises ShardError, a RuntimeError: status 1 with its message ("run the
    # same command again"), from xnaming's error boundary like any other expected failure.
    out = explain(
        args.dnn, args.xnn, args.data, args.out, split=args.split, explain=args.explain,
        map_layer=args.layer, embedding_layers=args.embedding_layers,
        threshold=args.threshold, contrastive=args.contrastive,
        batch_size=args.batch_size, limit=args.limit, device=args.device,
        workers=args.workers, loader_workers=args.loader_workers,
        threads=args.threads or None, timeout=timedelta(minutes=args.timeout),
    )  # fmt: skip
    if launched_rank().rank != 0:
        return 0
    embeddings = "embeddings.npz, " if (out / "embeddings.npz").exists() else ""
    print(
        f"xnaming explain: wrote {out}/ (manifest.json, activations.csv, images.csv, "
        f"summary.csv, {embeddings}images/, maps/, overlays/)"
    )
    return 0


def configure_evaluate(parser: argparse.ArgumentParser) -> None:
    """``xnaming evaluate --dnn RUN --data DIR --out DIR``."""
    parser.add_argument("--dnn", type=Path, required=True, help="the DNN run directory")
    parser.add_argument("--data", type=Path, required=True, help="local data set directory")
    parser.add_argument("--out", type=Path, required=True, help="directory for accuracy.csv")
    parser.add_argument("--batch-size", type=int, default=64, help="images per pass (64)")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's)")
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    _threads(args)
    import pandas as pd

    from xnn_training.training.evaluate import evaluate

    out = evaluate(args.dnn, args.data, args.out, device=args.device, batch_size=args.batch_size)
    table = pd.read_csv(out / "accuracy.csv")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"xnaming evaluate: wrote {out / 'accuracy.csv'}")
    return 0


def configure_why(parser: argparse.ArgumentParser) -> None:
    """``xnaming why --dnn RUN --xnn XRUN IMAGE_OR_FOLDER... --out DIR``."""
    parser.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE_OR_FOLDER",
                        help="image files, or folders searched for them")  # fmt: skip
    parser.add_argument("--dnn", type=Path, required=True, help="the DNN run directory")
    parser.add_argument("--xnn", type=Path, required=True,
                        help="an xNN run of that DNN (aligned: train xnn --namings)")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True,
                        help="directory for why.csv, summary.csv, why.html, overlays/")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=32, help="images per pass (32)")
    parser.add_argument("--threshold", type=float, default=SIGNIFICANT_SHARE,
                        help=f"share of the score to cover ({SIGNIFICANT_SHARE})")  # fmt: skip
    parser.add_argument("--layer", help="map layer (default: the architecture's)")
    parser.add_argument("--namings", type=Path,
                        help="name each map as the annotators named the maps of --bundle "
                             "(a namings table: collect or simulate); the namer learnt is "
                             "kept in $XNAMING_CACHE/namers (~/.cache/xnaming/namers)")  # fmt: skip
    parser.add_argument("--bundle", type=Path,
                        help="the map bundle those namings are of")  # fmt: skip
    parser.add_argument("--annotator",
                        help="whose words (default: the consensus of --namings)")  # fmt: skip
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's)")
    parser.set_defaults(handler=_run_why)


def _run_why(args: argparse.Namespace) -> int:
    _threads(args)
    from xnn_training.maps.why import why

    why(
        args.dnn, args.xnn, args.inputs, args.out, batch_size=args.batch_size,
        threshold=args.threshold, map_layer=args.layer, namings=args.namings,
        bundle=args.bundle, annotator=args.annotator, device=args.device,
    )  # fmt: skip
    return 0
