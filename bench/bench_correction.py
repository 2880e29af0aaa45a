"""The correction's bench: does ``train dnn --from --feedback`` undo a planted shortcut?

    .venv/bin/python bench/bench_correction.py --work /tmp/bench-correction \
        --runs 3:9 4:2 --plain 5 [--methods counterexamples rrr] \
        [--controls random shuffled] [--vgg16]

For each ``SEED:CUE`` of ``--runs``: toybirds with a cue planted in class CUE (``--classes``
species of ``--per-class`` images at ``--size`` px, by default the demo's data set, the default
feedback share), a toy CNN
(``--dnn-epochs``), its xNNs, the feedback split's bundle, five simulated annotators' namings
(``xnaming simulate``), then one correction per method of ``--methods`` and, with the first
method, one per control of ``--controls`` (the same correction on random regions of the same
sizes, or on the regions shuffled between images). ``--plain SEED``: the same without a cue
(the correction must leave it within 1 point). Every classifier is measured by
``xnaming evaluate``'s table.

Prints one row per classifier: the planted class's accuracy without the cue, its cue pull, the
overall accuracy and its change, the largest drop of any other class, and the seconds it took
(the correction's against the DNN's training). The goals (issue 27): accuracy without the cue
at least 90%, cue pull at most 5%, overall within 2 points, no other class more than 3 points
lower; the controls must miss them; cost within 2x of training the DNN. ``--vgg16``: the per-
step cost of each method against plain fine-tuning, VGG16 with random weights at 224 px.
Stages already written in ``--work`` are reused.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from analysis.namers.simulated_annotators import simulate_bundle
from xnn_training import make_toybirds, train_dnn, train_xnn
from xnn_training.defaults import TOYBIRDS_CLASSES, TOYBIRDS_IMAGE_SIZE, TOYBIRDS_PER_CLASS
from xnn_training.maps.explain import explain
from xnn_training.training.correct import METHODS, correct_dnn
from xnn_training.training.evaluate import accuracy_table
from xnn_training.training.runs import load_dnn_run


def _timed(function, *args, **kwargs) -> float:
    started = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - started


def _measure(run_dir: Path, data: Path) -> pd.DataFrame:
    run = load_dnn_run(run_dir)
    return accuracy_table(run.model, data, classes=run.classes, image_size=run.image_size)


def _row(label: str, table: pd.DataFrame, base: pd.DataFrame, seconds: float) -> dict:
    overall = table.iloc[-1]
    planted = table.dropna(subset=["cue_pull"]).iloc[:1] if "cue_pull" in table else None
    others = table.iloc[:-1]
    if planted is not None and len(planted):
        others = others[others["category"] != planted["category"].iloc[0]]
    drops = base.set_index("category")["accuracy"] - table.set_index("category")["accuracy"]
    return {
        "run": label,
        "no_cue": float(planted["accuracy_no_cue"].iloc[0]) if planted is not None else None,
        "cue_pull": float(planted["cue_pull"].iloc[0]) if planted is not None else None,
        "overall": float(overall["accuracy"]),
        "overall_change": float(overall["accuracy"] - base.iloc[-1]["accuracy"]),
        "worst_other_drop": float(drops.loc[others["category"]].max()),
        "seconds": round(seconds, 1),
    }


def bench_one(work: Path, seed: int, cue: str | None, args: argparse.Namespace) -> list[dict]:
    """One data set: baseline, each method, the controls; rows for the table."""
    name = f"seed{seed}-" + (f"cue{cue}" if cue else "plain")
    root = work / name
    data = root / "data"
    if not (data / "toybirds.json").is_file():
        make_toybirds(data, classes=args.classes, per_class=args.per_class, size=args.size,
                      seed=seed, shortcut=cue)  # fmt: skip
    torch.set_num_threads(args.threads)
    dnn_seconds = float("nan")  # a DNN trained earlier: its time is in that run's log
    if not (root / "dnn" / "config.json").is_file():
        dnn_seconds = _timed(train_dnn, data, root / "dnn", epochs=args.dnn_epochs, device="cpu")
    if not (root / "xnn" / "config.json").is_file():
        train_xnn(root / "dnn", root / "xnn", epochs=args.xnn_epochs, device="cpu")
    bundle = root / "feedback-bundle"
    if not (bundle / "summary.csv").is_file():
        explain(root / "dnn", root / "xnn", data, bundle, split="feedback",
                embedding_layers=(), device="cpu")  # fmt: skip
    namings = root / "namings.csv"
    if not namings.is_file():
        simulate_bundle(bundle, data).to_csv(namings, index=False)
    base = _measure(root / "dnn", data)
    rows = [{**_row("before", base, base, dnn_seconds), "data": name}]
    jobs = [(m, "annotated") for m in args.methods]
    jobs += [(args.methods[0], control) for control in (args.controls if cue else [])]
    for method, regions in jobs:
        out = root / f"{method}-{regions}"
        seconds = _timed(correct_dnn, root / "dnn", out, namings=namings, bundle=bundle,
                         method=method, regions=regions, device="cpu")  # fmt: skip
        label = method if regions == "annotated" else f"{method}, {regions} regions"
        rows.append({**_row(label, _measure(out, data), base, seconds), "data": name})
    return rows


def vgg16_step_costs(batch: int = 2) -> dict[str, float]:
    """Seconds per step of plain fine-tuning and of each method on VGG16 at 224 px."""
    import torchvision

    from xnn_training.training.correct import _rrr_penalty

    torch.manual_seed(0)
    model = torchvision.models.vgg16(num_classes=12)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    images, labels = torch.randn(batch, 3, 224, 224), torch.zeros(batch, dtype=torch.long)
    masks = torch.zeros(batch, 224, 224)
    masks[:, :30, :30] = 1

    def plain():
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def rrr():
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        penalty, log_probs = _rrr_penalty(model, images, masks)
        loss = loss + torch.nn.functional.nll_loss(log_probs, labels) + penalty
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    donors = torch.randn(batch, 3, 224, 224)

    def counterexamples():  # the step on images with a region pasted from donors
        composed = torch.where(masks[:, None].bool(), donors, images)
        loss = torch.nn.functional.cross_entropy(model(composed), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    plain()  # warm up
    costs = {"plain": min(_timed(plain) for _ in range(2))}
    costs["counterexamples"] = min(_timed(counterexamples) for _ in range(2))
    costs["rrr"] = min(_timed(rrr) for _ in range(2))
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--runs", nargs="*", default=["0:5"], help="SEED:CUE pairs")
    parser.add_argument("--plain", type=int, nargs="*", default=[], help="seeds without a cue")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--controls", nargs="*", default=["random", "shuffled"],
                        choices=["random", "shuffled"])  # fmt: skip
    parser.add_argument("--classes", type=int, default=TOYBIRDS_CLASSES)
    parser.add_argument("--per-class", type=int, default=TOYBIRDS_PER_CLASS)
    parser.add_argument("--size", type=int, default=TOYBIRDS_IMAGE_SIZE)
    parser.add_argument("--dnn-epochs", type=int, default=20)
    parser.add_argument("--xnn-epochs", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--vgg16", action="store_true")
    args = parser.parse_args()
    rows = []
    for spec in args.runs:
        seed, _, cue = spec.partition(":")
        rows += bench_one(args.work, int(seed), cue or None, args)
    for seed in args.plain:
        rows += bench_one(args.work, seed, None, args)
    columns = ["data", "run", "no_cue", "cue_pull", "overall", "overall_change",
               "worst_other_drop", "seconds"]  # fmt: skip
    table = pd.DataFrame(rows).loc[:, columns]
    args.work.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.work / "bench_correction.csv", index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.vgg16:
        costs = vgg16_step_costs()
        for method in METHODS:
            print(f"VGG16 224 px, per step: {method} {costs[method]:.2f} s, "
                  f"{costs[method] / costs['plain']:.2f}x plain fine-tuning")  # fmt: skip
    print(f"wrote {args.work / 'bench_correction.csv'}")


if __name__ == "__main__":
    main()
