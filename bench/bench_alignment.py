"""The alignment's bench: do aligned X-features speak the annotators' words on new images?

    .venv/bin/python bench/bench_alignment.py --work /tmp/bench-alignment --seed 0 \
        [--annotators sim-birder sim-coarse ...] [--consensus]

On toybirds without a cue (the demo's data set by default, ``--seed``): a toy CNN, its xNNs,
the feedback split's bundle named by the five simulated annotators (``xnaming simulate``), and
the test split's bundle named by them too. Then, per annotator (and with ``--consensus`` for
all of them together), ``xnaming train xnn --namings --bundle --annotator`` aligns an xNN with
the feedback namings; the test split is explained with it and named again by the same simulated
annotators. Namings that train (feedback split) and namings that measure (test split) never
meet. Printed per annotator:

- ``agree``: of the significant test maps the annotator named, the share whose X-feature's
  concept (config.json ``concepts``) is the annotator's name (goal: 85%);
- ``other``: of those they left unnamed or discarded, the share on a free X-feature (70%);
- ``xc_purity``: of their named test maps on a concept X-feature, the share named with that
  concept (0.85), against the unaligned xNN's XC purity (each X-feature's majority concept,
  the report's measure) and the aligned one's by the same measure;
- ``coverage``: the share of significant test maps they name, unaligned and aligned;
- fidelity: xNN accuracy against the DNN's (within 0.5 point) and the largest RMSE in % of a
  class's score range (at most 2%).

For the unaligned xNN, ``agree`` and ``other`` use each X-feature's majority concept on the
feedback maps as its name (what a user without alignment could do).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from analysis.measures.purity import cx_xc_purity
from analysis.namers.simulated_annotators import simulate_bundle
from label_config import NAMED
from xnn_training import make_toybirds, train_dnn, train_xnn
from xnn_training.defaults import TOYBIRDS_CLASSES, TOYBIRDS_IMAGE_SIZE, TOYBIRDS_PER_CLASS
from xnn_training.maps.explain import explain
from xnn_training.training.align import ALIGN_EPOCHS, align_xnn


def _named(bundle: Path, data: Path, cache: Path) -> pd.DataFrame:
    """The bundle's activations with each simulated annotator's verdict ('' unnamed)."""
    if not cache.is_file():
        simulate_bundle(bundle, data).to_csv(cache, index=False)
    namings = pd.read_csv(cache, dtype=str).fillna("")
    namings["verdict"] = namings["concept"].where(namings["status"] == NAMED, "")
    activations = pd.read_csv(bundle / "activations.csv", dtype={"x_feature": int})
    return namings.merge(activations[["activation_id", "x_feature"]], on="activation_id")


def _explain(dnn: Path, xnn: Path, data: Path, out: Path, split: str) -> Path:
    if not (out / "summary.csv").is_file():
        explain(dnn, xnn, data, out, split=split, embedding_layers=(), device="cpu")
    return out


def _fidelity(xnn: Path) -> tuple[float, float]:
    table = pd.read_csv(xnn / "fidelity.csv").set_index("category")
    overall = table.loc["overall"]
    worst = (table.drop("overall")["rmse"] / table.drop("overall")["score_range"]).max()
    return float(overall["xnn_accuracy"] - overall["dnn_accuracy"]), float(100 * worst)


def _scores(maps: pd.DataFrame, names: dict[tuple[str, int], str]) -> dict[str, float]:
    """agree, other, xc_purity (by the given names), majority XC purity, coverage."""
    said = maps.apply(lambda r: names.get((r["category"], r["x_feature"]), "other"), axis=1)
    named = maps["verdict"] != ""
    on_concept = named & (said != "other")
    by_majority = [
        cx_xc_purity(rows["verdict"].to_numpy(), rows["x_feature"].to_numpy())[1]
        for _, rows in maps[named].groupby("category")
    ]
    return {
        "agree": float((said[named] == maps.loc[named, "verdict"]).mean()),
        "other": float((said[~named] == "other").mean()),
        "xc_purity": float((said[on_concept] == maps.loc[on_concept, "verdict"]).mean()),
        "xc_majority": float(np.nanmean(by_majority)),
        "coverage": float(named.mean()),
    }


def bench(args: argparse.Namespace) -> pd.DataFrame:
    root = args.work
    data = root / "data"
    torch.set_num_threads(args.threads)
    if not (data / "toybirds.json").is_file():
        make_toybirds(data, classes=args.classes, per_class=args.per_class, size=args.size,
                      seed=args.seed)  # fmt: skip
    if not (root / "dnn" / "config.json").is_file():
        train_dnn(data, root / "dnn", device="cpu")
    if not (root / "xnn" / "config.json").is_file():
        train_xnn(root / "dnn", root / "xnn", device="cpu")
    feedback = _explain(root / "dnn", root / "xnn", data, root / "feedback", "feedback")
    fb = _named(feedback, data, root / "feedback-namings.csv")
    test = _explain(root / "dnn", root / "xnn", data, root / "test", "test")
    before = _named(test, data, root / "test-namings.csv")
    who = args.annotators or sorted(fb["annotator"].unique())
    rows = []
    for annotator in who + (["consensus"] if args.consensus else []):
        out = root / f"aligned-{annotator}"
        align_xnn(root / "dnn", out, namings=root / "feedback-namings.csv", bundle=feedback,
                  annotator=None if annotator == "consensus" else annotator,
                  epochs=args.epochs, device="cpu")  # fmt: skip
        concepts = json.loads((out / "config.json").read_text())["concepts"]
        aligned_names = {
            (c, int(j)): name for c, mapping in concepts.items() for j, name in mapping.items()
        }
        after = _named(_explain(root / "dnn", out, data, root / f"test-{annotator}", "test"),
                       data, root / f"test-{annotator}-namings.csv")  # fmt: skip
        measured = [annotator] if annotator != "consensus" else sorted(after["annotator"].unique())
        for person in measured:
            mine_fb = fb[(fb["annotator"] == person) & (fb["verdict"] != "")]
            majority = {
                key: rows_["verdict"].value_counts().sort_index().idxmax()
                for key, rows_ in mine_fb.groupby(["category", "x_feature"])
            }
            old = _scores(before[before["annotator"] == person], majority)
            new = _scores(after[after["annotator"] == person], aligned_names)
            accuracy, rmse = _fidelity(out)
            rows.append({
                "aligned_with": annotator, "annotator": person,
                "agree": new["agree"], "agree_before": old["agree"],
                "other": new["other"], "other_before": old["other"],
                "xc_purity": new["xc_purity"], "xc_majority": new["xc_majority"],
                "xc_majority_before": old["xc_majority"],
                "coverage": new["coverage"], "coverage_before": old["coverage"],
                "xnn_minus_dnn": accuracy, "worst_rmse_pct": rmse,
            })  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--annotators", nargs="*", default=[])
    parser.add_argument("--consensus", action="store_true")
    parser.add_argument("--classes", type=int, default=TOYBIRDS_CLASSES)
    parser.add_argument("--per-class", type=int, default=TOYBIRDS_PER_CLASS)
    parser.add_argument("--size", type=int, default=TOYBIRDS_IMAGE_SIZE)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=ALIGN_EPOCHS, help="alignment epochs")
    args = parser.parse_args()
    table = bench(args)
    args.work.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.work / "bench_alignment.csv", index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {args.work / 'bench_alignment.csv'}")


if __name__ == "__main__":
    main()
