"""How far the backend's names can go: its namer on the annotators' own groups; prints figures.

    .venv/bin/python bench/bench_names_ceiling.py --bundle B --namings N
    e.g. --bundle runs/demo/bundle --namings runs/demo/namings-simulated.csv

bench_proposals.py measures the names an annotator meets: a proposed group starts with its
final name only when the proposal both grouped the maps and named the group right. This bench
takes the grouping out: for each simulated annotator, boards in category order, the backend's
model is fitted on the annotator's earlier boards (as the backend fits it,
:func:`ls_backend.backend.annotator_model.fit_annotator_model` on
:func:`ls_backend.backend.naming.features_of`
rows of the task data publish makes), and each of the annotator's own named groups on boards 3
and later is named by the concept of the highest mean probability over its maps. The share
named right is what a perfect grouping would give the names goal (at least 60% of the named
groups start with their final name): by the namer alone, by the full model's probabilities
(renormalised over the concepts; how groups were named before the namer) and by the backend's
rule (the namer's mean at least :data:`ls_backend.backend.annotator_model.NAME_CONFIDENCE` and the
full
model agreeing). In-process, no Label Studio, about a minute.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from label_config import NAMED
from ls_backend.backend import annotator_model
from ls_backend.backend.annotator_model import fit_annotator_model, label_of
from ls_backend.backend.naming import features_of, maps_of_task, part_columns, where_columns
from ls_backend.manager.publish import board_tasks, load_bundle


def _features(bundle: Path) -> tuple[dict[str, np.ndarray], int, int]:
    """activation id -> the backend's feature row, from the task data publish makes; how
    many trailing columns the namer sees, and how many of those are part shares."""
    table = load_bundle(bundle)
    tasks = board_tasks(table, bundle, files_root=bundle.parent, annotator="bench@example.org")
    maps = [m for task in tasks for m in maps_of_task(task["data"])]
    rows = dict(zip([m.activation_id for m in maps], features_of(maps), strict=True))
    return rows, where_columns(maps), part_columns(maps)


def _full_model_naming(model: annotator_model.AnnotatorModel, rows: np.ndarray) -> np.ndarray:
    probabilities = model.probabilities(rows)
    columns = [model.classes.index(label_of(NAMED, c)) for c in model.concepts]
    named = probabilities[:, columns]
    return named / np.maximum(named.sum(axis=1, keepdims=True), 1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path, required=True, help="a bundle with embeddings")
    parser.add_argument("--namings", type=Path, required=True, help="xnaming simulate's table")
    args = parser.parse_args()
    features, where, parts = _features(args.bundle.resolve())
    namings = pd.read_csv(args.namings, keep_default_na=False, dtype=str)
    ways = ("namer", "full model", "backend's rule")
    right = dict.fromkeys(ways, 0)
    groups = tiny = 0
    for _, rows in namings.groupby("annotator"):
        boards = sorted(rows.groupby("category"), key=lambda item: item[0])
        for index, (_, board) in enumerate(boards):
            if index < 2:
                continue
            earlier = pd.concat([b for _, b in boards[:index]])
            model = fit_annotator_model(
                np.stack([features[a] for a in earlier["activation_id"]]),
                [
                    label_of(s, c)
                    for s, c in zip(earlier["status"], earlier["concept"], strict=True)
                ],
                space="bench",
                where=where,
                parts=parts,
            )
            named = board[board["status"] == NAMED]
            for concept, group in named.groupby("concept"):
                groups += 1
                tiny += len(group) <= 2
                if model is None or not model.concepts:
                    continue
                members = np.stack([features[a] for a in group["activation_id"]])
                namer = model.concept_probabilities(members).mean(axis=0)
                full = _full_model_naming(model, members).mean(axis=0)
                by_namer, by_full = int(np.argmax(namer)), int(np.argmax(full))
                right["namer"] += model.concepts[by_namer] == concept
                right["full model"] += model.concepts[by_full] == concept
                right["backend's rule"] += (
                    model.concepts[by_namer] == concept
                    and by_full == by_namer
                    and namer[by_namer] >= annotator_model.NAME_CONFIDENCE
                )
    print(
        f"{groups} named groups on boards 3 and later ({namings['annotator'].nunique()} "
        f"annotators); {tiny} ({tiny / groups:.1%}) hold one or two maps"
    )
    for way in ways:
        print(
            f"  the annotator's own groups named by the {way}: {right[way]}/{groups} "
            f"({right[way] / groups:.1%}; goal >= 60% of groups start with their name)"
        )


if __name__ == "__main__":
    main()
