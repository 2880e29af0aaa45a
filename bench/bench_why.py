"""``xnaming why`` against ``xnaming explain``: images per second on the same images.

    .venv/bin/python bench/bench_why.py --dnn RUN --xnn XRUN --data DATA --work /tmp/bench-why \
        [--namings NAMINGS.csv --bundle FEEDBACK_BUNDLE --annotator NAME]

Explains the data set's test split twice, once as a map bundle (``explain``) and once as a
folder of image files (``why``: the files are read, checked, explained for their predicted
class, overlaid and written with the page). Without ``--namings``, explain runs without map
embeddings (the maps and overlays only) and why names X-features from the xNN's config; with
it, both compute map embeddings (explain's default) and why names each map with the namer
learnt from those namings (its fit included in why's time). Prints both rates and their ratio
(issue 28's goal: ``why`` at least as fast as the maps of ``explain``).
"""

from __future__ import annotations

import argparse
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
    started = time.perf_counter()
    layers = None if args.namings else ()  # None: explain's default embedding layers
    explain(args.dnn, args.xnn, args.data, args.work / "bundle", split="test",
            embedding_layers=layers, device="cpu")  # fmt: skip
    explain_seconds = time.perf_counter() - started
    started = time.perf_counter()
    why(args.dnn, args.xnn, [folder], args.work / "why", namings=args.namings,
        bundle=args.bundle, annotator=args.annotator, device="cpu")  # fmt: skip
    why_seconds = time.perf_counter() - started
    n = len(images)
    print(f"explain: {n} images in {explain_seconds:.1f} s ({n / explain_seconds:.1f} img/s)")
    print(f"why:     {n} images in {why_seconds:.1f} s ({n / why_seconds:.1f} img/s), "
          f"{explain_seconds / why_seconds:.2f}x explain's rate")  # fmt: skip


if __name__ == "__main__":
    main()
