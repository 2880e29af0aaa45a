"""How close ``xnaming discover``'s machine namings come to other annotators', against chance.

Given a bundle with embeddings and other annotators' namings (e.g. ``xnaming simulate``'s),
runs discover, then prints the mean of analyze's agreement measures (Jaccard of the named sets,
D = 1 / D = 2 agreement, adjusted Rand index) of the machine namer with every other annotator,
over categories and annotators, and the same for ``--shuffles`` random groupings with the same
named maps and group sizes (``analysis.namers.discover.shuffled_groups``, seeded): mean and the
share
of shuffles the machine namer beats. Also the share of maps named and the concepts per category.

    .venv/bin/python bench/bench_discover.py BUNDLE --namings namings-simulated.csv
        [--shuffles 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from analysis.inputs import read_namings_csv
from analysis.namers.discover import agreement_against, discover_namings, shuffled_groups
from xnn_training.bundle.io import read_bundle

MEASURES = ["jaccard", "agreement_d1", "agreement_d2", "ari"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--namings", type=Path, required=True, help="the others' namings CSV")
    parser.add_argument("--shuffles", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    activations = read_bundle(args.bundle).activations
    begin = time.perf_counter()
    auto = discover_namings(args.bundle)
    took = time.perf_counter() - begin
    annotator = str(auto["annotator"].iloc[0])
    others = read_namings_csv(args.namings)
    named = auto[auto["status"] == "named"]
    print(
        f"{args.bundle}: {len(auto)} maps, {len(named) / len(auto):.1%} named by discover "
        f"({took:.1f} s), {named.groupby('category')['concept'].nunique().mean():.1f} concepts "
        f"per category; others: {', '.join(sorted(others['annotator'].unique()))}"
    )
    machine = agreement_against(activations, pd.concat([auto, others]), annotator)
    found = machine[MEASURES].mean()
    chance = pd.DataFrame(
        [
            agreement_against(
                activations, pd.concat([shuffled_groups(auto, annotator, seed=seed), others]),
                annotator,
            )[MEASURES].mean()
            for seed in range(args.seed, args.seed + args.shuffles)
        ]
    )  # fmt: skip
    print(f"{'measure':>14} {'discover':>9} {'random':>9} {'beaten':>7}")
    for measure in MEASURES:
        beaten = (chance[measure] < found[measure]).mean()
        print(f"{measure:>14} {found[measure]:9.3f} {chance[measure].mean():9.3f} {beaten:7.0%}")
    print("per annotator, discover's agreement_d1:")
    per = machine.groupby("annotator")["agreement_d1"].mean()
    for other, value in per.items():
        print(f"  {other}: {value:.3f}")


if __name__ == "__main__":
    main()
