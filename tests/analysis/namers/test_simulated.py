"""Simulated namings are said to be simulated in the results and the report."""

from __future__ import annotations

import warnings

import pytest

from analysis import analyze, write_report
from analysis.namers.synthetic import synthetic_study


@pytest.fixture
def study():
    activations, namings = synthetic_study(categories=1, annotators=3, activations=40, seed=0)
    return activations, namings


def test_simulated_annotators_are_named_in_notes_and_report(study, tmp_path):
    activations, namings = study
    first = sorted(namings["annotator"].unique())[0]
    namings = namings.assign(simulated=namings["annotator"].eq(first).map(str))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = analyze(activations, namings)
    assert results.notes[0].startswith(f"Simulated namings: {first} are simulated")
    write_report(results, tmp_path, figures=False)
    assert f"Simulated namings: {first}" in (tmp_path / "report.html").read_text()


def test_people_are_not_called_simulated(study):
    activations, namings = study
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = analyze(activations, namings.assign(simulated="False"))
    assert not any("Simulated" in note for note in results.notes)
