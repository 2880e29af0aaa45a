"""Benchmark: DNN and xNN training time on toybirds, and xNN training time for 200 classes
on synthetic 4096-d features (the size of VGG16's fc6 on all of CUB-200-2011).

Usage::

    .venv/bin/python bench/bench_training.py                 # everything (about 15-20 min)
    .venv/bin/python bench/bench_training.py --skip-toybirds # only the 200-class figure
    .venv/bin/python bench/bench_training.py --dnn runs/dnn  # reuse a trained toybirds DNN
    .venv/bin/python bench/bench_training.py --skip-toybirds --device cuda   # on a GPU

Prints one line per figure. Goals for 200 classes: under 5 minutes on 2 CPU cores, under 20 s
on one GPU (``--device cuda``; the time includes moving the features to the GPU).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def synthetic_features(n: int, d: int, classes: int, seed: int = 0):
    """Non-negative "fc6" features with class structure, and logits from a random fc7 + head."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    prototypes = torch.relu(torch.randn(classes, d, generator=g)) * (
        torch.rand(classes, d, generator=g) < 0.1
    )
    features = torch.relu(prototypes[labels] * 3 + torch.randn(n, d, generator=g) - 1)
    w7 = torch.randn(d, 512, generator=g) / d**0.5
    w8 = torch.randn(512, classes, generator=g) / 512**0.5
    return features, torch.relu(features @ w7) @ w8 * 10, labels


def bench_200_classes(args) -> None:
    from xnn_training.devices import resolve_device
    from xnn_training.training.fidelity import fidelity_report
    from xnn_training.training.fit_xnn import fit_xnn

    device = resolve_device(args.device)
    features, logits, labels = synthetic_features(args.n + 2000, 4096, 200)
    train, test = slice(0, args.n), slice(args.n, None)
    if device.type == "cuda":  # CUDA's start-up is not the training's time
        torch.zeros(1, device=device).sum().item()
    start = time.perf_counter()
    xnn = fit_xnn(
        features[train], logits[train], k=5, hidden=tuple(args.hidden),
        epochs=args.epochs, batch_size=args.batch_size,
        reconstructed_features=args.reconstructed_features, device=device,
    )  # fmt: skip
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    goal = "goal < 20 s on one GPU" if device.type == "cuda" else "goal < 5 min on 2 CPU cores"
    xnn.cpu()
    report = fidelity_report(
        xnn, features[test], logits[test], labels[test], list(range(200)),
        [str(c) for c in range(200)],
    )  # fmt: skip
    overall = report.iloc[-1]
    print(
        f"xnn 200 classes, 4096-d, {args.n} images, hidden {args.hidden}, {args.epochs} epochs "
        f"of batch {args.batch_size}, "
        f"{args.reconstructed_features} reconstructed features per step, {device}: "
        f"{seconds:.1f} s ({seconds / 60:.2f} min; {goal}); "
        f"held-out rmse {overall['rmse']:.3f} = "
        f"{100 * overall['rmse'] / overall['score_range']:.2f}% of the score range"
    )


def bench_toybirds(args) -> None:

    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        _time_toybirds(args, Path(tmp))


def _time_toybirds(args, work: Path) -> None:
    from xnn_training.data.toybirds import make_toybirds
    from xnn_training.training.fit_dnn import train_dnn
    from xnn_training.training.fit_xnn import train_xnn

    dnn = args.dnn
    if dnn is None:
        start = time.perf_counter()
        data = make_toybirds(work / "toybirds", classes=12, per_class=150, size=64)
        print(f"toybirds data (12 x 150 images, 64 px): {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        dnn = train_dnn(data, work / "dnn", device=args.device)
        print(
            f"dnn training on toybirds (toycnn, defaults, {args.device}): "
            f"{time.perf_counter() - start:.1f} s"
        )
    start = time.perf_counter()
    train_xnn(dnn, work / "xnn", device=args.device)
    print(
        f"xnn training on toybirds (12 classes, defaults, incl. feature extraction): "
        f"{time.perf_counter() - start:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--dnn", type=Path, help="reuse this toybirds DNN run")
    parser.add_argument("--skip-toybirds", action="store_true")
    parser.add_argument("--skip-200", action="store_true")
    parser.add_argument("--n", type=int, default=6000, help="training images (CUB: 5994)")
    parser.add_argument("--hidden", type=int, nargs=2, default=[16, 8])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--reconstructed-features", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if not args.skip_200:
        bench_200_classes(args)
    if not args.skip_toybirds:
        bench_toybirds(args)


if __name__ == "__main__":
    main()
