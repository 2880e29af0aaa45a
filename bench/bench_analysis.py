"""Benchmark of ``xnaming analyze`` on synthetic namings; prints its figures.

Two scales (issue 5):

- paper: 12 categories, 5 annotators, ~130 activations per category, ~8 concepts per annotator
  and category. Goals: whole analysis with figures < 10 s; without figures < 1 s.
- large: 200 categories, 20 annotators, 500 activations per category, 20 concepts per
  annotator and category. Goal: < 2 minutes, D = 2 exact where the instance allows.

The namings come from :func:`analysis.synthetic.synthetic_study` (made before the clock
starts). Timed: :func:`analysis.analyze` (checks, cleaning, every measure) plus
:func:`analysis.write_report` (CSV files, PNG figures, report.html).

Usage::

    .venv/bin/python bench/bench_analysis.py               # both scales
    .venv/bin/python bench/bench_analysis.py --scale paper
    .venv/bin/python bench/bench_analysis.py --scale large --d2-budget 60
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings

SCALES = {
    "paper": {"categories": 12, "annotators": 5, "activations": 130, "concepts": 8},
    "large": {"categories": 200, "annotators": 20, "activations": 500, "concepts": 20},
}


def run(scale: str, d2_budget: float | None, repeats: int) -> None:
    from analysis import analyze, write_report
    from analysis.synthetic import synthetic_study

    size = SCALES[scale]
    start = time.perf_counter()
    activations, namings = synthetic_study(**size, seed=0)
    made = time.perf_counter() - start
    print(
        f"\n[{scale}] {size['categories']} categories x {size['annotators']} annotators x "
        f"{size['activations']} activations, ~{size['concepts']} concepts: "
        f"{len(namings):,} naming rows (made in {made:.1f} s, not timed)"
    )
    best = {}
    for figures in (False, True):
        times = []
        for _ in range(repeats if scale == "paper" else 1):
            with tempfile.TemporaryDirectory() as out, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                results = analyze(activations, namings, d2_budget=d2_budget)
                t1 = time.perf_counter()
                write_report(results, out, figures=figures)
                t2 = time.perf_counter()
            times.append((t2 - t0, t1 - t0, t2 - t1))
        total, analysis_time, writing = min(times)
        best[figures] = total
        label = "with figures   " if figures else "without figures"
        print(
            f"  {label}: {total:6.2f} s  (analyze {analysis_time:.2f} s, write "
            f"{writing:.2f} s; best of {len(times)})"
        )
        if scale == "large":
            break  # one run: the figures add about the same seconds as at the paper's scale
    agreement = results.agreement
    proven = int(agreement["d2_optimal"].sum())
    gap = (agreement["agreement_d2_bound"] - agreement["agreement_d2"]).max()
    print(
        f"  pairs: {len(agreement):,}; D = 2 proven optimal: {proven:,} "
        f"({100 * proven / max(len(agreement), 1):.1f} %); largest gap to the bound: {gap:.4f}"
    )
    means = agreement[["jaccard", "agreement_d1", "agreement_d2", "ari", "nmi"]].mean()
    print("  mean over pairs: " + ", ".join(f"{k} {v:.3f}" for k, v in means.items()))
    goals = {"paper": {False: 1.0, True: 10.0}, "large": {False: 120.0}}[scale]
    for figures, goal in goals.items():
        if figures in best:
            verdict = "ok" if best[figures] < goal else "OVER"
            print(f"  goal {'with' if figures else 'without'} figures < {goal:g} s: {verdict}")


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
