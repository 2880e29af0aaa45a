"""A tiny study whose every measure is computed by hand in test_measures.py.

Images and activations (X-feature in brackets):
    i1: a1 [0], a2 [1]    i2: a3 [0], a7 [2]    i3: a4 [0], a5 [2]    i4: a6 [1]
Annotator A: a1 eye, a2 wing, a3 eye, a4 eye, a5 unnamed, a6 wing, a7 eye
Annotator B: a1 Eyes, a2 Eyes, a3 head, a4 discarded, a5 tail, a6 wing, a7 Eyes
"""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture
def tiny_activations() -> pd.DataFrame:
    rows = [
        ("a1", "i1", 0),
        ("a2", "i1", 1),
        ("a3", "i2", 0),
        ("a7", "i2", 2),
        ("a4", "i3", 0),
        ("a5", "i3", 2),
        ("a6", "i4", 1),
    ]
    return pd.DataFrame(
        [{"activation_id": a, "image_id": i, "category": "c", "x_feature": x} for a, i, x in rows]
    )


@pytest.fixture
def tiny_namings() -> pd.DataFrame:
    a = {"a1": "eye", "a2": "wing", "a3": "eye", "a4": "eye", "a5": None, "a6": "wing", "a7": "eye"}
    b = {
        "a1": "Eyes",
        "a2": "Eyes",
        "a3": "head",
        "a4": "-",
        "a5": "tail",
        "a6": "wing",
        "a7": "Eyes",
    }
    rows = []
    for annotator, names in (("A", a), ("B", b)):
        for activation, concept in names.items():
            status = (
                "named" if concept not in (None, "-") else "discarded" if concept else "unnamed"
            )
            rows.append(
                {
                    "annotator": annotator,
                    "category": "c",
                    "activation_id": activation,
                    "concept": concept if status == "named" else "",
                    "status": status,
                }
            )
    return pd.DataFrame(rows)
