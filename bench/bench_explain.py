"""Explain throughput on a real run: maps per second, computing only and end to end.

Given a DNN run, its xNN run and the data set, times (1) the explain stage's computation alone
(forward to the map layer once per image, scores, significant X-features, Excitation Backprop
from the cached activation) over the whole test split, and (2) ``explain`` end to end (also
decoding images and writing the bundle: npz maps, overlay PNGs at 360 px, CSVs, hashes).

    .venv/bin/python bench/bench_explain.py --dnn RUN --xnn XRUN --data DIR [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from xnn_training.datasets import open_dataset
from xnn_training.explain import _Explainer, default_map_layer, explain
from xnn_training.runs import load_xnn_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dnn", type=Path, required=True)
    parser.add_argument("--xnn", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    run = load_xnn_run(args.xnn, args.dnn)
    layer = default_map_layer(run.dnn.config["arch"], run.dnn.model)
    explainer = _Explainer(run, layer, 0.9, contrastive=False)
    dataset = open_dataset(args.data, "test", run.dnn.classes, size=run.dnn.image_size)
    batches = []
    for start in range(0, len(dataset), args.batch_size):
        items = [dataset[i] for i in range(start, min(start + args.batch_size, len(dataset)))]
        batches.append(
            (torch.stack([i["image"] for i in items]), torch.tensor([i["label"] for i in items]))
        )
    explainer(*batches[0], "true")  # warm-up (W+ cache, allocator)
    begin, maps = time.perf_counter(), 0
    for images, labels in batches:
        batch = explainer(images, labels, "true")
        maps += sum(len(m) for m in batch.layer_maps)
    compute = time.perf_counter() - begin
    print(f"layer {layer}, {len(dataset)} images, {maps} maps, {args.threads} thread(s)")
    print(f"compute only: {maps / compute:.0f} maps/s, {len(dataset) / compute:.0f} images/s")

    with tempfile.TemporaryDirectory() as tmp:
        begin = time.perf_counter()
        explain(args.dnn, args.xnn, args.data, Path(tmp) / "bundle", batch_size=args.batch_size)
        total = time.perf_counter() - begin
    print(f"end to end (incl. loading runs, writing the bundle): {maps / total:.0f} maps/s, "
          f"{len(dataset) / total:.0f} images/s, {total:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
