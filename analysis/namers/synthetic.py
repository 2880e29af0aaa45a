"""Synthetic activations and namings, for benchmarks, tests and trying the report.

Not a model of annotators (``xnaming simulate`` builds those from a bundle): just namings with
the structure the measures look at. Each activation has a hidden body part (partly tied to
its X-feature), a "nameable" flag shared by every annotator and a sub-type; each annotator
names most nameable activations, splits some parts into finer concepts at their own
resolution ("open wing" / "closed wing"), may merge two parts, and errs now and then.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from label_config import DISCARDED, NAMED, UNNAMED

__all__ = ["synthetic_study"]

_PARTS = [
    "eye",
    "beak",
    "crown",
    "wing",
    "tail",
    "breast",
    "belly",
    "leg",
    "back",
    "throat",
    "nape",
    "head",
]
_REFINEMENTS = [
    "upper",
    "lower",
    "open",
    "closed",
    "left",
    "right",
    "front",
    "rear",
    "tip",
    "edge",
    "dark",
    "light",
    "spotted",
    "striped",
    "side",
    "top",
    "base",
    "middle",
    "inner",
    "outer",
]
_VARIANTS = {"beak": "bill", "wing": "wings", "eye": "Eye", "breast": "chest", "leg": "legs"}


def synthetic_study(
    *,
    categories: int = 12,
    annotators: int = 5,
    activations: int = 130,
    concepts: int = 8,
    x_features: int = 5,
    error: float = 0.04,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An activations table and tidy namings of ``annotators`` for ``categories`` categories.

    Parameters
    ----------
    categories, annotators
        How many of each.
    activations
        Significant activations per category (1-3 per image).
    concepts
        About how many concepts each annotator makes per category.
    x_features
        X-features per category's xNN.
    error
        Probability that an annotator puts an activation in a random concept.
    seed
        Random seed; the same arguments give the same tables.

    Returns
    -------
    (activations, namings)
        In the formats of docs/formats.md.
    """
    rng = np.random.default_rng(seed)
    act_rows, naming_rows = [], []
    names = [f"ann{k + 1:02d}" for k in range(annotators)]
    n_parts = max(2, min(len(_PARTS), round(concepts * 0.6)))
    for c in range(categories):
        category = f"c{c + 1:03d}"
        # Images with 1-3 significant activations on distinct X-features.
        ids, images, xs = [], [], []
        image = 0
        while len(ids) < activations:
            k = min(
                int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25])), x_features, activations - len(ids)
            )
            for x in rng.choice(x_features, size=k, replace=False):
                ids.append(f"{category}-i{image:04d}:x{x}")
                images.append(f"{category}-i{image:04d}")
                xs.append(int(x))
            image += 1
        n = len(ids)
        xs = np.array(xs)
        parts_of_x = rng.integers(0, n_parts, x_features)
        part = np.where(rng.random(n) < 0.65, parts_of_x[xs], rng.integers(0, n_parts, n))
        nameable = rng.random(n) < 0.75
        subtype = rng.random(n)
        part_names = list(rng.choice(_PARTS, size=n_parts, replace=False))
        act_rows.append(
            pd.DataFrame(
                {"activation_id": ids, "image_id": images, "category": category, "x_feature": xs}
            )
        )
        for name in names:
            # Split parts into sub-concepts until the annotator has about `concepts` of them.
            splits = np.ones(n_parts, dtype=int)
            for p in rng.integers(
                0, n_parts, max(0, concepts - n_parts + int(rng.integers(-1, 2)))
            ):
                splits[p] += 1
            merge = rng.integers(0, n_parts, 2) if rng.random() < 0.3 else None
            concept_names = {}
            for p in range(n_parts):
                base = part_names[p]
                if rng.random() < 0.25 and base in _VARIANTS:
                    base = _VARIANTS[base]
                refinements = rng.choice(_REFINEMENTS, size=splits[p], replace=False)
                for s in range(splits[p]):
                    concept_names[(p, s)] = base if splits[p] == 1 else f"{refinements[s]} {base}"
            effective = part.copy()
            if merge is not None and merge[0] != merge[1]:
                effective[effective == merge[1]] = merge[0]
                for s in range(splits[merge[0]]):
                    concept_names[(merge[0], s)] += f" and {part_names[merge[1]]}"
            sub = np.minimum((subtype * splits[effective]).astype(int), splits[effective] - 1)
            named = np.where(nameable, rng.random(n) < 0.93, rng.random(n) < 0.08)
            wrong = rng.random(n) < error
            keys = list(concept_names)
            concept = [
                concept_names[keys[rng.integers(len(keys))]] if w else concept_names[(p, s)]
                for p, s, w in zip(effective, sub, wrong, strict=True)
            ]
            status = np.where(named, NAMED, np.where(rng.random(n) < 0.3, DISCARDED, UNNAMED))
            naming_rows.append(
                pd.DataFrame(
                    {
                        "annotator": name,
                        "category": category,
                        "activation_id": ids,
                        "concept": np.where(named, concept, ""),
                        "status": status,
                    }
                )
            )
    return pd.concat(act_rows, ignore_index=True), pd.concat(naming_rows, ignore_index=True)
