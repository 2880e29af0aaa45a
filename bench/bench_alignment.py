"""Do new images get explained in the annotators' words? The bench of ``xnaming why``'s names.

    .venv/bin/python bench/bench_alignment.py --work /tmp/bench-alignment --seed 0 \
        [--annotators sim-birder sim-coarse ...] [--consensus] [--design namer|aligned] \
        [--named-split feedback|train]

On toybirds without a cue (the demo's data set by default, ``--seed``): a toy CNN, its xNN,
the feedback split's bundle (with map embeddings) named by the five simulated annotators
(``xnaming simulate``), and the test split named by them too. Namings that train (feedback
split) and namings that measure (test split) never meet. Per annotator (and with
``--consensus`` for all of them together):

- ``--design namer`` (default): ``xnaming why --namings FEEDBACK --bundle FEEDBACK_BUNDLE
  --annotator A`` on the test split's image files, with the unaligned xNN; why.csv's concept
  of each map is compared with A's naming of the same map (the test split explained for the
  predicted class, as why explains). The namer sees no part annotation (honest);
- ``--design aligned``: ``xnaming train xnn --namings --bundle --annotator`` aligns an xNN with
  the feedback namings; the test split is explained with it and named again by the same
  simulated annotators; each map's concept is its X-feature's (config.json ``concepts``).

Printed per annotator:

- ``agree``: of the significant test maps the annotator named, the share given the
  annotator's name (goal: 85%);
- ``other``: of those they left unnamed or discarded, the share given ``other`` (70%);
- ``xc_purity``: of their named test maps given a concept, the share given theirs (0.85),
  against each X-feature's majority concept on the unaligned xNN (the report's XC purity);
- ``coverage``: the share of significant test maps they name, unaligned and aligned;
- fidelity: xNN accuracy against the DNN's (within 0.5 point) and the largest RMSE in % of a
  class's score range (at most 2%).

``*_before``: each X-feature of the unaligned xNN named with its majority concept on the
feedback maps (what a user could do without either design). ``--named-split train`` names the
DNN's training images instead of the feedback split (about 4 times as many maps): what more
namings would give the namer.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from analysis.measures.purity import cx_xc_purity
from analysis.namers.simulated_annotators import simulate_bundle
from label_config import NAMED
from xnaming.cli import main as xnaming
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


def _explain(dnn: Path, xnn: Path, data: Path, out: Path, split: str, **options) -> Path:
    if not (out / "summary.csv").is_file():
        explain(dnn, xnn, data, out, split=split, device="cpu", **options)
    return out


def _fidelity(xnn: Path) -> tuple[float, float]:
    table = pd.read_csv(xnn / "fidelity.csv").set_index("category")
    overall = table.loc["overall"]
    worst = (table.drop("overall")["rmse"] / table.drop("overall")["score_range"]).max()
    return float(overall["xnn_accuracy"] - overall["dnn_accuracy"]), float(100 * worst)


def _scores(maps: pd.DataFrame, said: pd.Series) -> dict[str, float]:
    """agree, other, xc_purity of ``said`` (each map's concept or 'other'), against the maps'
    verdicts; the report's XC purity (each X-feature's majority concept); coverage."""
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


def _by_x_feature(maps: pd.DataFrame, names: dict[tuple[str, int], str]) -> pd.Series:
    return maps.apply(lambda r: names.get((r["category"], r["x_feature"]), "other"), axis=1)


def _why_names(root: Path, data: Path, annotator: str, threads: int, named: str) -> pd.Series:
    """``xnaming why --namings --bundle`` (the ``named`` split's bundle) on the test split's
    image files: activation id -> the concept why.csv gives the map."""
    out = root / (f"why-{annotator}" if named == "feedback" else f"why-{named}-{annotator}")
    if not (out / "why.csv").is_file():
        images = pd.read_csv(data / "images.csv", dtype=str)
        files = [str(data / p) for p in images.loc[images["split"] == "test", "image_path"]]
        who = [] if annotator == "consensus" else ["--annotator", annotator]
        status = xnaming([
            "why", "--dnn", str(root / "dnn"), "--xnn", str(root / "xnn"),
            "--namings", str(root / f"{named}-bundle-namings.csv"),
            "--bundle", str(root / f"{named}-bundle"), *who, "--out", str(out),
            "--threads", str(threads), "--device", "cpu", *files,
        ])  # fmt: skip
        if status:
            raise SystemExit(f"xnaming why failed ({status})")
    table = pd.read_csv(out / "why.csv", keep_default_na=False).query("x_feature != ''")
    ids = table["image_path"].map(lambda p: Path(p).stem) + ":x" + table["x_feature"].astype(str)
    return pd.Series(table["concept"].to_numpy(), index=ids.to_numpy())


def bench(args: argparse.Namespace) -> pd.DataFrame:
    root = args.work
    os.environ.setdefault("XNAMING_CACHE", str(root / "cache"))  # the namers it learns, kept
    data = root / "data"
    torch.set_num_threads(args.threads)
    if not (data / "toybirds.json").is_file():
        make_toybirds(data, classes=args.classes, per_class=args.per_class, size=args.size,
                      seed=args.seed)  # fmt: skip
    if not (root / "dnn" / "config.json").is_file():
        train_dnn(data, root / "dnn", device="cpu")
    if not (root / "xnn" / "config.json").is_file():
        train_xnn(root / "dnn", root / "xnn", device="cpu")
    named = args.named_split
    if named != "feedback" and args.design != "namer":
        raise SystemExit("--named-split train: with --design namer only")
    feedback = _explain(root / "dnn", root / "xnn", data, root / f"{named}-bundle", named)
    fb = _named(feedback, data, root / f"{named}-bundle-namings.csv")
    # The test split as why explains it: for the predicted class.
    test = _explain(root / "dnn", root / "xnn", data, root / "test-predicted", "test",
                    explain="predicted", embedding_layers=())  # fmt: skip
    before = _named(test, data, root / "test-predicted-namings.csv")
    who = args.annotators or sorted(fb["annotator"].unique())
    rows = []
    for annotator in who + (["consensus"] if args.consensus else []):
        if args.design == "namer":
            after, xnn = before, root / "xnn"
            said_of = _why_names(root, data, annotator, args.threads, named)
        else:
            xnn = root / f"aligned-{annotator}"
            align_xnn(root / "dnn", xnn, namings=root / f"{named}-bundle-namings.csv",
                      bundle=feedback, annotator=None if annotator == "consensus" else annotator,
                      epochs=args.epochs, device="cpu")  # fmt: skip
            concepts = json.loads((xnn / "config.json").read_text())["concepts"]
            carried = {
                (c, int(j)): n for c, mapping in concepts.items() for j, n in mapping.items()
            }
            explained = _explain(root / "dnn", xnn, data, root / f"test-{annotator}", "test",
                                 explain="predicted", embedding_layers=())  # fmt: skip
            after = _named(explained, data, root / f"test-{annotator}-namings.csv")
            said_of = None
        measured = [annotator] if annotator != "consensus" else sorted(after["annotator"].unique())
        for person in measured:
            mine_fb = fb[(fb["annotator"] == person) & (fb["verdict"] != "")]
            majority = {
                key: rows_["verdict"].value_counts().sort_index().idxmax()
                for key, rows_ in mine_fb.groupby(["category", "x_feature"])
            }
            old_maps = before[before["annotator"] == person].reset_index(drop=True)
            new_maps = after[after["annotator"] == person].reset_index(drop=True)
            said = (
                new_maps["activation_id"].map(said_of)
                if said_of is not None
                else _by_x_feature(new_maps, carried)
            )
            if said.isna().any():
                raise SystemExit(f"why.csv lacks {int(said.isna().sum())} maps of the test bundle")
            old = _scores(old_maps, _by_x_feature(old_maps, majority))
            new = _scores(new_maps, said)
            accuracy, rmse = _fidelity(xnn)
            rows.append({
                "design": args.design, "with": annotator, "annotator": person,
                "agree": new["agree"], "agree_before": old["agree"],
                "other": new["other"], "other_before": old["other"],
                "xc_purity": new["xc_purity"], "xc_majority_before": old["xc_majority"],
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
    parser.add_argument("--design", choices=("namer", "aligned"), default="namer")
    parser.add_argument("--named-split", choices=("feedback", "train"), default="feedback",
                        help="the split whose namings train (train: the DNN's own training "
                        "images, about 4 times the feedback split, to see what more namings "
                        "give)")  # fmt: skip
    parser.add_argument("--classes", type=int, default=TOYBIRDS_CLASSES)
    parser.add_argument("--per-class", type=int, default=TOYBIRDS_PER_CLASS)
    parser.add_argument("--size", type=int, default=TOYBIRDS_IMAGE_SIZE)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=ALIGN_EPOCHS, help="alignment epochs")
    args = parser.parse_args()
    table = bench(args)
    args.work.mkdir(parents=True, exist_ok=True)
    named = "" if args.named_split == "feedback" else f"_{args.named_split}"
    out = args.work / f"bench_alignment_{args.design}{named}.csv"
    table.to_csv(out, index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
