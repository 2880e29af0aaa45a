"""Readable figures: a row per category, pages for long lists, Figure 7's pair, sizes on screen."""

from __future__ import annotations

import struct
import warnings

import pytest

from analysis import analyze, write_report
from analysis.namers.synthetic import synthetic_study
from analysis.report.figures import PAGE, pages, short_labels
from analysis.report.writer import choose_pair


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    return struct.unpack(">II", data[16:24])


def test_pages_and_labels():
    names = [f"c{k:03d}" for k in range(95)]
    assert [len(p) for p in pages(reversed(names))] == [40, 40, 15]
    assert pages(names)[0][0] == "c000"
    long = ["001." + "x" * 60, "002." + "x" * 60, "short"]
    labels = short_labels(long)
    assert len(set(labels.values())) == 3
    assert all(len(v) <= 48 for v in labels.values())
    assert labels["short"] == "short"
    clash = short_labels(["y" * 60 + "1", "y" * 60 + "2"])
    assert len(set(clash.values())) == 2


def _results(categories: int, annotators: int = 5, seed: int = 0):
    activations, namings = synthetic_study(
        categories=categories, annotators=annotators, activations=40, seed=seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return analyze(activations, namings)


def test_figure_7_draws_the_pair_with_most_concepts():
    results = _results(4)
    concepts = {
        (c.category, a): len(names)
        for c in results.categories
        for a, names in zip(c.annotators, c.concepts, strict=True)
    }
    best = max(
        concepts[(r.category, r.annotator_a)] + concepts[(r.category, r.annotator_b)]
        for r in results.agreement.itertuples()
    )
    category, a, b = choose_pair(results)
    assert concepts[(category, a)] + concepts[(category, b)] == best


@pytest.mark.slow
def test_many_categories_are_paged_and_fit_a_1400_pixel_screen(tmp_path):
    results = _results(2 * PAGE + 5, annotators=12)
    out = tmp_path / "report"
    path = write_report(results, out)
    for stem in ("coverage_activations", "coverage_partial", "coverage_complete", "named_by"):
        files = sorted(out.glob(f"{stem}*.png"))
        assert [f.name for f in files] == [f"{stem}-2.png", f"{stem}-3.png", f"{stem}.png"]
        for f in files:
            width, height = _png_size(f)
            assert width <= 1100, f  # shown unscaled in the report's column
            assert height <= 1600, f  # 40 rows at most
    assert _png_size(out / "distrust.png")[1] <= 1600  # the 40 highest only
    html = path.read_text()
    assert "(page 3)" in html
    # A later, smaller study leaves no page of the earlier one behind.
    write_report(_results(3), out)
    assert not list(out.glob("*-2.png"))


def test_long_category_names_keep_figures_in_the_column(tmp_path):
    activations, namings = synthetic_study(categories=4, annotators=5, activations=40, seed=1)
    # toybirds-like names, longer than the label limit: the widest labels a figure draws
    long = {c: f"{c}.plain_crown_spotted_wing_pointed_tail_and_long_beak" for c in
            activations["category"].unique()}  # fmt: skip
    activations["category"] = activations["category"].map(long)
    namings["category"] = namings["category"].map(long)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = analyze(activations, namings)
    out = tmp_path / "report"
    write_report(results, out)
    drawn = sorted(out.glob("*.png"))
    assert len(drawn) >= 6  # Figures 3-7 and the distrust chart
    for f in drawn:
        width, _height = _png_size(f)
        assert width <= 1100, f  # the report's column, shown unscaled
        if not f.name.startswith("matching"):  # narrowed to fit, not squashed
            assert width >= 1050, f
