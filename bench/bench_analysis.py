"""Benchmark of ``xnaming analyze`` on synthetic namings; prints its figures.

Two scales (issue 5):

- paper: 12 categories, 5 annotators, ~130 activations per category, ~8 concepts per annotator
  and category. Goals: whole analysis with figures < 10 s; without figures < 1 s.
- large: 200 categories, 20 annotators, 500 activations per category, 20 concepts per
  annotator and category. Goal: < 2 minutes, D = 2 exact where the instance allows.

The namings come from :func:`analysis.namers.synthetic.synthetic_study` (made before the clock
starts), with each map's share of its decision drawn at random. Timed: :func:`analysis.analyze`
(checks, cleaning, every measure) plus :func:`analysis.write_report` (CSV files, PNG figures,
report.html), without figures, with figures, and with figures and map thumbnails (issue 14).
For the thumbnails a bundle is made beside the study, untimed: its overlays are 360-pixel PNGs
like the demo's (a few dozen distinct pictures, hard-linked to every map's path), so reading
and shrinking them costs what it costs on a real bundle. The size of report.html is printed.

Usage::

    .venv/bin/python bench/bench_analysis.py               # both scales
    .venv/bin/python bench/bench_analysis.py --scale paper
    .venv/bin/python bench/bench_analysis.py --scale large --d2-budget 60
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

SCALES = {
    "paper": {"categories": 12, "annotators": 5, "activations": 130, "concepts": 8},
    "large": {"categories": 200, "annotators": 20, "activations": 500, "concepts": 20},
}
DISTINCT_OVERLAYS = 48
OVERLAY_SIDE = 360  # the demo's overlays (toybirds' 64 pixels shown at 360)


def _with_shares(activations, seed: int = 0):
    """Each map's share of its decision's positive score: a random split per image."""
    import numpy as np

    rng = np.random.default_rng(seed)
    raw = rng.gamma(1.0, size=len(activations))
    total = activations.assign(raw=raw).groupby("image_id")["raw"].transform("sum")
    return activations.assign(share=raw / total.to_numpy())


def _overlay_picture(seed: int):
    """A picture like an overlay: a smooth background with a jet heat blob."""
    import numpy as np
    from matplotlib import colormaps
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    side = OVERLAY_SIDE
    base = gaussian_filter(rng.random((side, side, 3)), sigma=(12, 12, 0))
    base = (base - base.min()) / (np.ptp(base) + 1e-9)
    yy, xx = np.mgrid[:side, :side]
    cy, cx = rng.uniform(0.2, 0.8, 2) * side
    heat = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (0.08 * side) ** 2))
    blended = 0.5 * base + 0.5 * colormaps["jet"](heat)[..., :3]
    return Image.fromarray((255 * blended).astype(np.uint8))


def make_bundle(activations, root: Path) -> Path:
    """A map bundle holding ``activations``: tables, manifest and an overlay for every map."""
    from xnn_training.bundle.io import ACTIVATION_COLUMNS, IMAGE_COLUMNS

    root.mkdir(parents=True)
    pictures = root / "pictures"
    pictures.mkdir()
    for k in range(DISTINCT_OVERLAYS):
        _overlay_picture(k).save(pictures / f"{k}.png")
    table = activations.assign(
        contribution=activations["share"],
        rank=activations.groupby("image_id").cumcount() + 1,
        map_path="",
        overlay_path=[f"overlays/{a.replace(':', '/')}.png" for a in activations["activation_id"]],
        image_path="",
    )
    for k, path in enumerate(table["overlay_path"]):
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(pictures / f"{k % DISTINCT_OVERLAYS}.png", target)
    table.loc[:, list(ACTIVATION_COLUMNS)].to_csv(root / "activations.csv", index=False)
    images = table.groupby("image_id", sort=False).agg(category=("category", "first"))
    images = images.reset_index().assign(
        true_category=lambda f: f["category"], prediction=lambda f: f["category"], score=1.0,
        n_significant=table.groupby("image_id", sort=False).size().to_numpy(), image_path="",
    )  # fmt: skip
    images.loc[:, list(IMAGE_COLUMNS)].to_csv(root / "images.csv", index=False)
    manifest = {"format": "xnaming-bundle", "version": 1, "complete": True}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def run(scale: str, d2_budget: float | None, repeats: int) -> None:
    from analysis import analyze, write_report
    from analysis.namers.synthetic import synthetic_study

    size = SCALES[scale]
    start = time.perf_counter()
    activations, namings = synthetic_study(**size, seed=0)
    activations = _with_shares(activations)
    made = time.perf_counter() - start
    print(
        f"\n[{scale}] {size['categories']} categories x {size['annotators']} annotators x "
        f"{size['activations']} activations, ~{size['concepts']} concepts: "
        f"{len(namings):,} naming rows (made in {made:.1f} s, not timed)"
    )
    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        bundle = make_bundle(activations, Path(work) / "bundle")
        print(
            f"  bundle of {len(activations):,} overlays made in {time.perf_counter() - start:.1f} s"
        )
        modes = [("without figures", False, None), ("with figures   ", True, None),
                 ("with pictures  ", True, bundle)]  # fmt: skip
        best = {}
        for label, figures, pictures in modes if scale == "paper" else modes[-1:]:
            times = []
            for _ in range(repeats if scale == "paper" else 1):
                with tempfile.TemporaryDirectory() as out, warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.perf_counter()
                    results = analyze(activations, namings, d2_budget=d2_budget)
                    t1 = time.perf_counter()
                    report = write_report(results, out, figures=figures, bundle=pictures)
                    t2 = time.perf_counter()
                    megabytes = report.stat().st_size / 1e6
                times.append((t2 - t0, t1 - t0, t2 - t1))
            total, analysis_time, writing = min(times)
            best[label.strip()] = total
            print(
                f"  {label}: {total:6.2f} s  (analyze {analysis_time:.2f} s, write "
                f"{writing:.2f} s; best of {len(times)}); report.html {megabytes:.1f} MB"
            )
    agreement = results.agreement
    proven = int(agreement["d2_optimal"].sum())
    gap = (agreement["agreement_d2_bound"] - agreement["agreement_d2"]).max()
    print(
        f"  pairs: {len(agreement):,}; D = 2 proven optimal: {proven:,} "
        f"({100 * proven / max(len(agreement), 1):.1f} %); largest gap to the bound: {gap:.4f}"
    )
    means = agreement[["jaccard", "agreement_d1", "agreement_d2", "ari", "nmi"]].mean()
    print("  mean over pairs: " + ", ".join(f"{k} {v:.3f}" for k, v in means.items()))
    flagged = int(results.distrust["flagged"].sum())
    print(f"  decisions to distrust: {flagged} categories flagged (synthetic: none expected)")
    goals = {
        "paper": {"without figures": 1.0, "with figures": 10.0},
        "large": {"with pictures": 120.0},
    }[scale]
    for label, goal in goals.items():
        if label in best:
            verdict = "ok" if best[label] < goal else "OVER"
            print(f"  goal {label} < {goal:g} s: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=[*SCALES, "both"], default="both")
    parser.add_argument(
        "--d2-budget",
        type=float,
        default=None,
        help="seconds for proving D = 2 optima over the run (default: no budget, all exact)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs at the paper's scale")
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"bench_analysis: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load:.2f} at start (the machine is shared: figures vary with load)"
    )
    for scale in SCALES if args.scale == "both" else [args.scale]:
        run(scale, args.d2_budget, args.repeats)


if __name__ == "__main__":
    main()
