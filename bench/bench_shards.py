"""Sharded explain: N ranks x 1 thread against 1 rank x N threads, as a user runs them.

Builds two run pairs in a temporary directory (nothing downloaded):

- toycnn on toybirds at 64 px, trained for a few epochs;
- torchvision vgg16 with random weights (``weights=None``) on toybirds at 224 px, map layer pool4,
  its xNN trained on its fc6 features;

then times the whole ``xnaming explain`` command (start-up, loading, maps, writing the bundle)
for each way of using the machine's cores, best of ``--repeats`` (the runs interleaved, so a busy
spell on a shared machine hits all alike):

- ``1 x N``: one process with ``--threads N``;
- ``N x 1 workers``: ``--workers N --threads 1``;
- ``N x 1 torchrun``: ``torchrun --standalone --nproc-per-node N ... --threads 1``.

Prints, for the whole command and for its explaining phase alone (the slowest process's time
from its first image file to its last, read from the bundle's file times: start-up, loading the
runs and the final merge excluded), seconds, maps per second and the ratio of the one-process
time to each sharded time (above 1: the ranks are faster). With ``--device cuda`` (on a GPU
machine) the same commands run on the GPU, ranks sharing it, and the one-process run has
``--device cuda`` too.

    .venv/bin/python bench/bench_shards.py [--ranks 2] [--repeats 2] [--skip-vgg16]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
BATCH_SIZE = 16


def toycnn_runs(work: Path, per_class: int) -> tuple[Path, Path, Path]:
    from xnn_training import make_toybirds, train_dnn, train_xnn

    data = make_toybirds(work / "toy-data", classes=6, per_class=per_class, size=64, seed=0)
    dnn = train_dnn(data, work / "toy-dnn", epochs=4, batch_size=32, device="cpu")
    xnn = train_xnn(dnn, work / "toy-xnn", epochs=30, device="cpu")
    return data, dnn, xnn


def vgg16_runs(work: Path, per_class: int) -> tuple[Path, Path, Path]:
    """A DNN run of vgg16 with random weights, written as ``xnaming train dnn`` writes one."""
    import torch

    from xnn_training import build_dnn, make_toybirds, open_dataset, train_xnn
    from xnn_training.training.runs import DNN_FORMAT, VERSION, now, relative, versions, write_run

    data = make_toybirds(work / "vgg-data", classes=3, per_class=per_class, size=224, seed=0)
    classes = open_dataset(data, "train").classes
    out = work / "vgg-dnn"
    config = {
        "format": DNN_FORMAT,
        "version": VERSION,
        "created": now(),
        "arch": "vgg16",
        "num_classes": len(classes),
        "feature_layer": "classifier.1",
        "image_size": 224,
        "data": {"path": relative(data, out), "layout": "toybirds", "classes": classes},
        "training": {"note": "random weights (bench_shards.py): timing only"},
        "versions": versions(),
    }
    if not (out / "config.json").is_file():  # with --keep, a second bench reuses the runs
        torch.manual_seed(0)
        write_run(out, build_dnn("vgg16", len(classes)), config, classes)
    xnn = train_xnn(out, work / "vgg-xnn", epochs=5, batch_size=32, device="cpu")
    return data, out, xnn


def explain_command(runs: tuple[Path, Path, Path], out: Path, device: str) -> list[str]:
    data, dnn, xnn = runs
    return ["explain", "--dnn", str(dnn), "--xnn", str(xnn), "--data", str(data),
            "--out", str(out), "--device", device]  # fmt: skip


def timed(command: list[str], threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return seconds


def explaining_seconds(bundle: Path, ranks: int, batch_size: int) -> float:
    """The slowest process's explaining time: from its first image file to its last.

    Batch b of the data set order went to process ``b % ranks``, so each image's process is
    known; per process, one image's time is missing from its first-to-last span and is added.
    Start-up, loading the runs, waiting for the others and the final merge are excluded.
    """
    lines = (bundle / "images.csv").read_text().splitlines()[1:]
    paths = [bundle / line.rsplit(",", 3)[1] for line in lines]  # image_path, before 2 extras
    spans = []
    for rank in range(ranks):
        times = sorted(
            path.stat().st_mtime
            for i, path in enumerate(paths)
            if (i // batch_size) % ranks == rank
        )
        if len(times) > 1:
            spans.append((times[-1] - times[0]) * len(times) / (len(times) - 1))
    return max(spans)


def bench(name: str, runs: tuple[Path, Path, Path], work: Path, args: argparse.Namespace) -> None:
    n = args.ranks
    xnaming = str(BIN / "xnaming")
    ways = {
        f"1 x {n} threads": ([xnaming], ["--threads", str(n)], n),
        f"{n} x 1 workers": ([xnaming], ["--workers", str(n), "--threads", "1"], 1),
        f"{n} x 1 torchrun": (
            [str(BIN / "torchrun"), "--standalone", f"--nproc-per-node={n}", xnaming],
            ["--threads", "1"],
            1,
        ),
    }
    best = dict.fromkeys(ways, float("inf"))
    phase = dict.fromkeys(ways, float("inf"))
    maps = 0
    for repeat in range(args.repeats):
        for way, (launcher, options, threads) in ways.items():
            out = work / "bundles" / f"{name.split(',')[0]}-{way.replace(' ', '')}-{repeat}"
            shutil.rmtree(out, ignore_errors=True)  # a bundle left there would be resumed
            command = [*launcher, *explain_command(runs, out, args.device), *options]
            command += ["--batch-size", str(BATCH_SIZE)]
            best[way] = min(best[way], timed(command, threads))
            ranks = 1 if way.startswith("1 x") else n
            phase[way] = min(phase[way], explaining_seconds(out, ranks, BATCH_SIZE))
            maps = len((out / "activations.csv").read_text().splitlines()) - 1
            images = len((out / "images.csv").read_text().splitlines()) - 1
    print(f"\n{name}: {images} images, {maps} maps, device {args.device}, best of {args.repeats}")
    print("                       whole command: s  maps/s ratio  explaining: s  maps/s ratio")
    single = f"1 x {n} threads"
    for way, seconds in best.items():
        print(
            f"  {way:<20} {seconds:15.1f} {maps / seconds:7.1f} {best[single] / seconds:5.2f}"
            f" {phase[way]:14.1f} {maps / phase[way]:7.1f} {phase[single] / phase[way]:5.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--toy-per-class", type=int, default=120, help="a third is tested")
    parser.add_argument("--vgg-per-class", type=int, default=60, help="a third is tested")
    parser.add_argument("--skip-toycnn", action="store_true")
    parser.add_argument("--skip-vgg16", action="store_true")
    parser.add_argument("--keep", type=Path, help="build the runs here and keep them")
    args = parser.parse_args()
    import torch

    print(
        f"torch {torch.__version__}, {len(os.sched_getaffinity(0))} cores, "
        f"load {os.getloadavg()}, {args.ranks} ranks"
    )
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if not args.skip_toycnn:
            runs = toycnn_runs(work, args.toy_per_class)
            bench("toycnn, 64 px", runs, work, args)
        if not args.skip_vgg16:
            runs = vgg16_runs(work, args.vgg_per_class)
            bench("vgg16 (random weights), 224 px, pool4", runs, work, args)
        print(json.dumps({"load_after": os.getloadavg()}))


if __name__ == "__main__":
    main()
