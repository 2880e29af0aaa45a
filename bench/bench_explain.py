"""Explain throughput on a real run: maps per second, computing only and end to end.

Given a DNN run, its xNN run and the data set, times (1) the explain stage's computation alone
(forward to the map layer once per image, scores, significant X-features, Excitation Backprop
from the cached activation) over the whole test split, and (2) ``explain`` end to end (also
decoding images and writing the bundle: npz maps, overlay PNGs at 360 px, CSVs, hashes), with
``--workers`` processes on ``--device``. On a GPU the computation is timed in IEEE float32, as
explain runs it, with a CUDA synchronisation at the end.

    .venv/bin/python bench/bench_explain.py --dnn RUN --xnn XRUN --data DIR [--threads 1]
        [--device auto] [--workers 1] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from xnn_training.datasets import open_dataset
from xnn_training.devices import resolve_device, strict_float32
from xnn_training.explain import _Explainer, default_map_layer, explain
from xnn_training.runs import load_xnn_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dnn", type=Path, required=True)
    parser.add_argument("--xnn", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, help="default: CPU 16, GPU 64")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--workers", type=int, default=1, help="processes, end to end")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    args.batch_size = args.batch_size or (64 if device.type == "cuda" else 16)

    run = load_xnn_run(args.xnn, args.dnn)
    layer = default_map_layer(run.dnn.config["arch"], run.dnn.model)
    explainer = _Explainer(run, layer, 0.9, contrastive=False, device=device)
    dataset = open_dataset(args.data, "test", run.dnn.classes, size=run.dnn.image_size)
    batches = []
    for start in range(0, len(dataset), args.batch_size):
        items = [dataset[i] for i in range(start, min(start + args.batch_size, len(dataset)))]
        batches.append(
            (torch.stack([i["image"] for i in items]), torch.tensor([i["label"] for i in items]))
        )
    with strict_float32(device):
        explainer(*batches[0], "true")  # warm-up (W+ cache, allocator)
        batches = [(images.to(device), labels) for images, labels in batches]  # not timed
        begin, maps = time.perf_counter(), 0
        for images, labels in batches:
            batch = explainer(images, labels, "true")  # ends with the maps copied to the CPU
            maps += sum(len(m) for m in batch.layer_maps)
        compute = time.perf_counter() - begin
    print(
        f"layer {layer}, {len(dataset)} images, {maps} maps, {args.threads} thread(s), {device}, "
        f"batch {args.batch_size}"
    )
    print(f"compute only: {maps / compute:.0f} maps/s, {len(dataset) / compute:.0f} images/s")

    with tempfile.TemporaryDirectory() as tmp:
        begin = time.perf_counter()
        explain(
            args.dnn, args.xnn, args.data, Path(tmp) / "bundle", batch_size=args.batch_size,
            device=args.device, workers=args.workers, threads=args.threads,
        )  # fmt: skip
        total = time.perf_counter() - begin
    print(f"end to end, {args.workers} process(es) (incl. loading runs, writing the bundle): "
          f"{maps / total:.0f} maps/s, "
          f"{len(dataset) / total:.0f} images/s, {total:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
