"""``xnaming why`` against ``xnaming explain``: images per second on the same images.

    .venv/bin/python bench/bench_why.py --dnn RUN --xnn XRUN --data DATA --work /tmp/bench-why \
        [--namings NAMINGS.csv --bundle FEEDBACK_BUNDLE --annotator NAME]

Explains the data set's test split as a map bundle (``explain``, without map embeddings: the
maps and overlays) and as a folder of image files (``why``: the files are read, checked,
explained for their predicted class, overlaid, named and written with the page). Without
``--namings``, why names X-features from the xNN's config. With it, why names each map with the
namer learnt from those namings, twice: first learning it (an empty namer cache, the learning
included in why's time), then again with the namer it kept. Prints the rates and their ratio
to explain's (issue 28's goal: ``why`` at least as fast as the maps of ``explain``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import torch

from xnn_training.maps.explain import explain
from xnn_training.maps.why import why


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("--dnn", "--xnn", "--data", "--work"):
        parser.add_argument(name, type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--namings", type=Path)
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--annotator")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shutil.rmtree(args.work, ignore_errors=True)
    images = pd.read_csv(args.data / "images.csv").query("split == 'test'")
    folder = args.work / "images"
    for path in images["image_path"]:
        target = folder / Path(path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(args.data / path, target)
    os.environ["XNAMING_CACHE"] = str(args.work / "cache")  # empty: the first why learns
    started = time.perf_counter()
    explain(args.dnn, args.xnn, args.data, args.work / "bundle", split="test",
            embedding_layers=(), device="cpu")  # fmt: skip
    explain_seconds = time.perf_counter() - started
    n = len(images)
    print(f"explain: {n} images in {explain_seconds:.1f} s ({n / explain_seconds:.1f} img/s)")
    runs = ("learning the namer", "namer kept") if args.namings else ("names from the xNN",)
    for number, label in enumerate(runs):
        started = time.perf_counter()
        why(args.dnn, args.xnn, [folder], args.work / f"why{number}", namings=args.namings,
            bundle=args.bundle, annotator=args.annotator, device="cpu")  # fmt: skip
        seconds = time.perf_counter() - started
        print(f"why ({label}): {n} images in {seconds:.1f} s ({n / seconds:.1f} img/s), "
              f"{explain_seconds / seconds:.2f}x explain's rate")  # fmt: skip


if __name__ == "__main__":
    main()
