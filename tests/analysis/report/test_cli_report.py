"""`xnaming analyze` end to end: the output files, their columns (a contract), the report."""

from __future__ import annotations

import base64
import re
import subprocess
import sys

import pandas as pd
import pytest

from analysis import analyze, write_report
from analysis.namers.synthetic import synthetic_study
from xnaming.cli import main
from xnaming.errors import BAD_INPUT

CONTRACT = {
    "coverage": [
        "category",
        "annotator",
        "activations",
        "named",
        "activation_coverage",
        "images",
        "partial_coverage",
        "complete_coverage",
    ],
    "purity": ["category", "annotator", "named", "cx_purity", "xc_purity"],
    "named_by": ["category", "n_annotators", "activations", "fraction"],
    "agreement": [
        "category",
        "annotator_a",
        "annotator_b",
        "named_a",
        "named_b",
        "both_named",
        "jaccard",
        "agreement_d1",
        "agreement_d2",
        "d2_optimal",
        "ari",
        "nmi",
    ],
    "compatibility": ["category", "annotator_a", "annotator_b", "d", "exact", "subset"],
    "summaries": ["category", "annotator", "explanation", "images", "fraction"],
}
FIGURES = [
    "distrust",
    "coverage_activations",
    "coverage_partial",
    "coverage_complete",
    "named_by",
    "matching",
]


@pytest.fixture
def study_files(tmp_path):
    activations, namings = synthetic_study(categories=2, annotators=3, activations=40, seed=3)
    act_path, nam_path = tmp_path / "activations.csv", tmp_path / "namings.csv"
    activations.to_csv(act_path, index=False)
    namings.to_csv(nam_path, index=False)
    return act_path, nam_path


def run_cli(act_path, nam_path, out, *extra):
    return main(
        [
            "analyze",
            "--activations",
            str(act_path),
            "--namings",
            str(nam_path),
            "--out",
            str(out),
            *extra,
        ]
    )


def test_cli_writes_the_contract_files(tmp_path, study_files, capsys):
    out = tmp_path / "out"
    assert run_cli(*study_files, out, "--no-figures") == 0
    assert str(out) in capsys.readouterr().out
    for name, columns in CONTRACT.items():
        table = pd.read_csv(out / f"{name}.csv")
        assert list(table.columns[: len(columns)]) == columns, name
        assert len(table), name
    html = (out / "report.html").read_text()
    for title in ("Table 2", "Table 3", "Table 4", "Table 5", "Table 6"):
        assert title in html


@pytest.mark.slow
def test_cli_figures_are_embedded(tmp_path, study_files):
    out = tmp_path / "out"
    assert run_cli(*study_files, out, "--pair", "c001", "ann02", "ann01") == 0
    for name in FIGURES:
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == len(FIGURES)
    assert all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
    assert not re.search(r'src="(?!data:)', html)  # nothing fetched from elsewhere
    assert "ann01 and ann02 in category c001" in html


def test_cli_reports_bad_input_and_fails(tmp_path, study_files, capsys):
    act_path, nam_path = study_files
    namings = pd.read_csv(nam_path, dtype=str, keep_default_na=False)
    namings.loc[0, "status"] = "skipped"
    namings.to_csv(nam_path, index=False)
    status = main(
        [
            "analyze",
            "--activations",
            str(act_path),
            "--namings",
            str(nam_path),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert status == BAD_INPUT
    assert "status must be one of named, unnamed, discarded; found 'skipped'" in (
        capsys.readouterr().err
    )


def test_cli_rejects_an_unknown_pair(tmp_path, study_files, capsys):
    act_path, nam_path = study_files
    status = main(
        [
            "analyze",
            "--activations",
            str(act_path),
            "--namings",
            str(nam_path),
            "--out",
            str(tmp_path / "out"),
            "--no-figures",
            "--pair",
            "c001",
            "x",
            "y",
        ]
    )
    assert status == BAD_INPUT
    assert "--pair: no annotators" in capsys.readouterr().err


def test_names_are_escaped_in_the_report(tmp_path, tiny_activations, tiny_namings):
    namings = tiny_namings.replace({"concept": {"wing": "<script>alert(1)</script>"}})
    path = write_report(analyze(tiny_activations, namings, min_images=1), tmp_path, figures=False)
    html = path.read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_cli_module_imports_nothing_heavy():
    code = (
        "import sys, analysis.cli; "
        "print(sorted(m for m in ('pandas', 'matplotlib', 'sklearn', 'scipy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_budget_spent_flags_pairs_unless_trivially_optimal(study_files):
    activations, namings = (pd.read_csv(p, dtype=str, keep_default_na=False) for p in study_files)
    with pytest.warns(UserWarning, match="not proven"):
        results = analyze(activations, namings, d2_budget=0.0)
    exact = analyze(activations, namings)
    flagged = ~results.agreement["d2_optimal"]
    assert flagged.any()
    assert (results.agreement["agreement_d2"] <= exact.agreement["agreement_d2"] + 1e-12).all()
    assert (
        exact.agreement["agreement_d2"] <= results.agreement["agreement_d2_bound"] + 1e-12
    ).all()


@pytest.mark.parametrize("annotators", [[], ["A"]])
def test_studies_without_pairs_still_report(tmp_path, tiny_activations, tiny_namings, annotators):
    namings = tiny_namings[tiny_namings["annotator"].isin(annotators)]
    results = analyze(tiny_activations, namings, min_images=1)
    assert results.agreement.empty
    assert results.compatibility.empty
    assert row_count(results.coverage, "any") == 1
    path = write_report(results, tmp_path, figures=True)
    assert "No pairs of annotators" in path.read_text()
    assert not (tmp_path / "matching.png").exists()


def row_count(table, annotator):
    return int((table["annotator"] == annotator).sum())
