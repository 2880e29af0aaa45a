"""Explain throughput on a real run: maps per second, computing only and end to end.

Given a DNN run, its xNN run and the data set, times (1) the explain stage's computation alone
(forward to the map layer once per image, scores, significant X-features, Excitation Backprop
from the cached activation) over the whole test split, and (2) ``explain`` end to end (also
decoding images and writing the bundle: npz maps, overlay PNGs at 360 px, CSVs, hashes), with
``--workers`` processes on ``--device``. On a GPU the computation is timed in IEEE float32, as
explain runs it, with a CUDA synchronisation at the end.

``--embeddings both`` (the default) times each figure with the map embeddings (explain's default
embedding layers; on a data set with part masks, the computation also without the masks'
block, "points") and without them (``--embedding-layers none``), taking turns (batch by batch
for the computation, run by run end to end) over ``--repeats`` rounds and keeping each one's
best time, and prints the ratio against the goal of
issue 12 (with embeddings at most 1.1x the time without); ``on`` or ``off`` times one of them.

    .venv/bin/python bench/bench_explain.py --dnn RUN --xnn XRUN --data DIR [--threads 1]
        [--device auto] [--workers 1] [--batch-size 16] [--embeddings both] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from xnn_training.data.datasets import open_dataset
from xnn_training.devices import resolve_device, strict_float32
from xnn_training.maps.embed import default_embedding_layers
from xnn_training.maps.explain import (
    Explainer,
    default_map_layer,
    explain,
    part_cover,
    part_points,
)
from xnn_training.training.runs import load_xnn_run

GOAL_RATIO = 1.1  # explain with embeddings / without (issue 12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dnn", type=Path, required=True)
    parser.add_argument("--xnn", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, help="default: CPU 16, GPU 64")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--workers", type=int, default=1, help="processes, end to end")
    parser.add_argument("--embeddings", choices=("both", "on", "off"), default="both")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; each keeps its best")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    args.batch_size = args.batch_size or (64 if device.type == "cuda" else 16)
    modes = ("off", "on") if args.embeddings == "both" else (args.embeddings,)

    run = load_xnn_run(args.xnn, args.dnn)
    layer = default_map_layer(run.dnn.config["arch"], run.dnn.model)
    layers = {"off": (), "on": default_embedding_layers(run.dnn.model, layer)}
    explainers = {
        mode: Explainer(
            run, layer, 0.9, contrastive=False, device=device, embedding_layers=layers[mode]
        )
        for mode in modes
    }
    dataset = open_dataset(args.data, "test", run.dnn.classes, size=run.dnn.image_size)
    batches = []
    for start in range(0, len(dataset), args.batch_size):
        indices = range(start, min(start + args.batch_size, len(dataset)))
        items = [dataset[i] for i in indices]
        parts = masks = None  # the located parts and masks, as explain passes them
        if dataset.located_parts:
            parts = torch.stack([part_points(dataset, i) for i in indices])
            if dataset.has_part_masks:
                size = tuple(items[0]["image"].shape[-2:])
                masks = torch.stack([part_cover(dataset, i, size) for i in indices])
        batches.append(
            (
                torch.stack([i["image"] for i in items]),
                torch.tensor([i["label"] for i in items]),
                (parts, masks),
            )
        )
    print(
        f"layer {layer}, {len(dataset)} images, {args.threads} thread(s), {device}, "
        f"batch {args.batch_size}, embedding layers {list(layers['on'])}"
    )
    # Per batch, the best of --repeats for each mode, the modes taking turns batch by batch: on a
    # shared machine the load changes within seconds, and both modes see the same load.
    # With part masks, "on" also runs without them ("points"): what the masks' block costs.
    timed = [*modes, "points"] if "on" in modes and batches[0][2][1] is not None else modes
    best = {mode: [float("inf")] * len(batches) for mode in timed}
    maps = 0
    with strict_float32(device):
        for explainer in explainers.values():
            explainer(*batches[0][:2], "true", *batches[0][2])  # warm-up (W+ cache, allocator)
        batches = [(images.to(device), labels, parts) for images, labels, parts in batches]
        for _ in range(args.repeats):
            maps = 0
            for index, (images, labels, parts) in enumerate(batches):
                for mode in timed:
                    explainer = explainers["on" if mode == "points" else mode]
                    located = {"on": parts, "points": (parts[0], None)}.get(mode, (None, None))
                    begin = time.perf_counter()
                    # ends with the maps on the CPU
                    batch = explainer(images, labels, "true", *located)
                    best[mode][index] = min(best[mode][index], time.perf_counter() - begin)
                maps += sum(len(m) for m in batch.layer_maps)
    compute = {mode: sum(times) for mode, times in best.items()}
    total = {mode: float("inf") for mode in modes}
    for mode in timed:
        print(
            f"compute only, embeddings {mode}: {maps / compute[mode]:.0f} maps/s, "
            f"{len(dataset) / compute[mode]:.0f} images/s, {compute[mode]:.2f} s"
        )

    for _ in range(args.repeats):
        for mode in modes:
            with tempfile.TemporaryDirectory() as tmp:
                begin = time.perf_counter()
                explain(
                    args.dnn, args.xnn, args.data, Path(tmp) / "bundle",
                    batch_size=args.batch_size, device=args.device, workers=args.workers,
                    threads=args.threads, embedding_layers=None if mode == "on" else (),
                )  # fmt: skip
                total[mode] = min(total[mode], time.perf_counter() - begin)
    for mode in modes:
        print(
            f"end to end, embeddings {mode}, {args.workers} process(es) (incl. loading runs, "
            f"writing the bundle): {maps / total[mode]:.0f} maps/s, "
            f"{len(dataset) / total[mode]:.0f} images/s, {total[mode]:.1f} s"
        )
    if len(modes) == 2:
        for name, times in (("compute only", compute), ("end to end", total)):
            ratio = times["on"] / times["off"]
            verdict = "meets" if ratio <= GOAL_RATIO else "misses"
            print(
                f"{name}: with embeddings / without = {ratio:.3f} ({verdict} the goal of at "
                f"most {GOAL_RATIO}x)"
            )
    if "points" in compute and "off" in compute:
        print(
            f"compute only: with embeddings and part points only / without = "
            f"{compute['points'] / compute['off']:.3f} (the part masks' block: "
            f"{compute['on'] / compute['points'] - 1:+.1%})"
        )


if __name__ == "__main__":
    main()
