"""`xnaming analyze` on Label Studio JSON exports, read by the one real export reader."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from xnaming.cli import main

IDS = [f"{image}:x{k}" for image in "abcdef" for k in (0, 1)]


def _board_export(annotator: str, groups: dict[str, list[str]], names: dict[int, str]) -> list:
    result = [
        {
            "type": "ranker",
            "from_name": "groups",
            "to_name": "maps",
            "value": {
                "ranker": {
                    "_": [i for i in IDS if not any(i in g for g in groups.values())],
                    **groups,
                }
            },
        }
    ]
    result += [
        {
            "type": "textarea",
            "from_name": f"g{g}_name",
            "to_name": "maps",
            "value": {"text": [text]},
        }
        for g, text in names.items()
    ]
    return [
        {
            "id": 1,
            "data": {
                "category": "jay",
                "annotator": annotator,
                "items": [{"id": i, "html": "<img>"} for i in IDS],
                "activations": [
                    {"activation_id": i, "image_id": i[0], "x_feature": int(i[-1])} for i in IDS
                ],
            },
            "annotations": [
                {
                    "id": 7,
                    "result": result,
                    "was_cancelled": False,
                    "updated_at": "2026-01-01T00:00:00Z",
                }
            ],
        }
    ]


@pytest.fixture
def exports(tmp_path):
    activations = pd.DataFrame(
        {
            "activation_id": IDS,
            "image_id": [i[0] for i in IDS],
            "category": "jay",
            "x_feature": [int(i[-1]) for i in IDS],
        }
    )
    activations.to_csv(tmp_path / "activations.csv", index=False)
    eyes, wings = [i for i in IDS if i.endswith("x0")], [i for i in IDS if i.endswith("x1")]
    one = _board_export("ann1@x.org", {"g1": eyes, "g2": wings}, {1: "eye", 2: "wing"})
    # ann2 lumps everything into one unnamed group, and discards nothing.
    two = _board_export("ann2@x.org", {"g4": eyes + wings}, {})
    for name, export in (("one.json", one), ("two.json", two)):
        (tmp_path / name).write_text(json.dumps(export))
    return tmp_path


def test_analyze_reads_board_exports(exports, capsys):
    out = exports / "report"
    status = main(
        [
            "analyze",
            "--activations",
            str(exports / "activations.csv"),
            "--namings",
            str(exports / "one.json"),
            str(exports / "two.json"),
            "--out",
            str(out),
            "--no-figures",
        ]
    )
    assert status == 0
    coverage = pd.read_csv(out / "coverage.csv").set_index("annotator")
    assert coverage.loc["ann1@x.org", "activation_coverage"] == 1.0
    assert coverage.loc["ann2@x.org", "activation_coverage"] == 1.0
    agreement = pd.read_csv(out / "agreement.csv").iloc[0]
    # One side splits what the other lumps: D = 1 keeps the larger half, D = 2 everything.
    assert agreement["agreement_d1"] == pytest.approx(0.5)
    assert agreement["agreement_d2"] == pytest.approx(1.0)
    purity = pd.read_csv(out / "purity.csv").set_index("annotator")
    assert purity.loc["ann2@x.org", "cx_purity"] == pytest.approx(0.5)  # "group 4" mixes both
    assert purity.loc["ann1@x.org", "cx_purity"] == pytest.approx(1.0)
