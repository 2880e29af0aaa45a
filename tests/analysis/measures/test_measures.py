"""Every measure on the tiny study of conftest.py, against values computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import normalized_mutual_info_score

from analysis import analyze


@pytest.fixture
def results(tiny_activations, tiny_namings):
    return analyze(tiny_activations, tiny_namings, min_images=1)


def row(table: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(table), dtype=bool)
    for column, value in where.items():
        mask &= (table[column] == value).to_numpy()
    assert mask.sum() == 1, f"expected one row for {where}, got {mask.sum()}"
    return table[mask].iloc[0]


def test_coverage(results):
    a = row(results.coverage, annotator="A")
    assert (a.activations, a.named, a.images) == (7, 6, 4)
    assert a.activation_coverage == pytest.approx(6 / 7)
    assert a.partial_coverage == 1.0
    assert a.complete_coverage == 0.75  # i3 has a5 unnamed
    b = row(results.coverage, annotator="B")
    assert b.named == 6
    assert b.complete_coverage == 0.75  # i3 has a4 discarded
    anyone = row(results.coverage, annotator="any")
    assert (anyone.named, anyone.activation_coverage, anyone.complete_coverage) == (7, 1.0, 1.0)


def test_purity(results):
    a = row(results.purity, annotator="A")
    assert a.named == 6
    assert a.cx_purity == pytest.approx(5 / 6)  # eye: x0 x0 x0 x2; wing: x1 x1
    assert a.xc_purity == pytest.approx(1.0)  # x0 -> eye 3, x1 -> wing 2, x2 -> eye 1
    b = row(results.purity, annotator="B")
    assert b.cx_purity == pytest.approx(4 / 6)  # Eyes: x0 x1 x2; head; tail; wing
    assert b.xc_purity == pytest.approx(3 / 6)  # every X-feature splits 1 / 1


def test_purity_against_the_carried_concepts(tiny_activations, tiny_namings):
    # An aligned xNN: x0 carries "eye", x1 "Wing " (case and space do not count), x3 "tail"
    # (no significant map here), x2 is free.
    carried = {"c": {0: "eye", 1: "Wing ", 3: "tail"}}
    results = analyze(tiny_activations, tiny_namings, min_images=1, carried=carried)
    assert row(results.purity, annotator="A").xc_carried == pytest.approx(5 / 5)  # x2's a7 not
    assert row(results.purity, annotator="B").xc_carried == pytest.approx(1 / 4)  # a6 wing only
    table = results.carried
    b_x0 = row(table, annotator="B", x_feature=0)
    assert (b_x0.carries, b_x0.maps, b_x0.named, b_x0.named_as_carried) == ("eye", 3, 2, 0.0)
    a_x2 = row(table, annotator="A", x_feature=2)
    assert (a_x2.carries, a_x2.named, a_x2.most_named) == ("(free)", 1, "eye")
    assert np.isnan(a_x2.named_as_carried)
    assert row(table, annotator="A", x_feature=1).named_as_carried == 1.0
    assert row(table, annotator="A", x_feature=3).maps == 0
    plain = analyze(tiny_activations, tiny_namings, min_images=1)
    assert plain.carried.empty
    assert plain.purity["xc_carried"].isna().all()


def test_named_by(results):
    fractions = results.named_by.set_index("n_annotators")["fraction"]
    assert fractions.to_dict() == pytest.approx({0: 0.0, 1: 2 / 7, 2: 5 / 7})
    assert results.named_by["activations"].tolist() == [0, 2, 5]


def test_pair_agreement(results):
    pair = row(results.agreement, annotator_a="A", annotator_b="B")
    assert (pair.named_a, pair.named_b, pair.both_named) == (6, 6, 5)
    assert pair.jaccard == pytest.approx(5 / 7)
    # Intersection graph: eye-Eyes 2, eye-head 1, wing-Eyes 1, wing-wing 1.
    assert pair.agreement_d1 == pytest.approx(3 / 5)  # eye-Eyes + wing-wing
    assert pair.agreement_d2 == pytest.approx(4 / 5)  # eye-{Eyes, head} + wing-wing
    assert bool(pair.d2_optimal)
    assert pair.agreement_d2_bound == pytest.approx(4 / 5)
    # ARI by hand: sum C(n_ij, 2) = 1, rows 3 + 1 = 4, columns 3, C(5, 2) = 10.
    expected = 4 * 3 / 10
    assert pair.ari == pytest.approx((1 - expected) / ((4 + 3) / 2 - expected))
    both_a = ["eye", "wing", "eye", "wing", "eye"]  # a1 a2 a3 a6 a7
    both_b = ["Eyes", "Eyes", "head", "wing", "Eyes"]
    assert pair.nmi == pytest.approx(normalized_mutual_info_score(both_a, both_b))


def test_matchings_table(results):
    d2 = results.matchings[results.matchings["d"] == 2]
    edges = set(zip(d2["concept_a"], d2["concept_b"], d2["weight"], strict=True))
    assert edges == {("eye", "Eyes", 2), ("eye", "head", 1), ("wing", "wing", 1)}
    sets = d2.groupby("set")["concept_b"].apply(set).tolist()
    assert {"Eyes", "head"} in sets


def test_compatibility(results):
    d1 = row(results.compatibility, d=1)
    assert (d1.exact, d1.subset, d1.matched_weight) == (1.0, 1.0, 3)  # eye = Eyes, wing = wing
    d2 = row(results.compatibility, d=2)
    assert d2.exact == pytest.approx(3 / 4)  # eye-head (weight 1) is not compatible
    assert d2.subset == pytest.approx(3 / 4)


def test_summaries(results, tiny_activations, tiny_namings):
    a = results.summaries[results.summaries["annotator"] == "A"]
    assert list(zip(a["explanation"], a["images"], strict=True)) == [
        ("eye", 2),
        ("eye + wing", 1),
        ("wing", 1),
    ]
    assert a["fraction"].tolist() == [0.5, 0.25, 0.25]
    b = results.summaries[results.summaries["annotator"] == "B"]
    assert b["explanation"].tolist() == ["Eyes", "Eyes + head", "tail", "wing"]
    with_other = analyze(tiny_activations, tiny_namings, min_images=1, other=True).summaries
    assert "eye + other" in with_other[with_other["annotator"] == "A"]["explanation"].tolist()


def test_unlabeled_images(tiny_activations, tiny_namings):
    namings = tiny_namings[
        ~((tiny_namings["annotator"] == "A") & (tiny_namings["activation_id"] == "a6"))
    ]
    summary = analyze(tiny_activations, namings, min_images=1).summaries
    a = summary[summary["annotator"] == "A"].set_index("explanation")["images"]
    assert a["unlabeled"] == 1  # i4's only activation is no longer named (unseen = unnamed)


def test_cleaning_drops_small_concepts(tiny_activations, tiny_namings):
    results = analyze(tiny_activations, tiny_namings, min_images=2)
    dropped = results.dropped
    assert dropped[["annotator", "concept", "activations", "images"]].values.tolist() == [
        ["B", "head", 1, 1],
        ["B", "tail", 1, 1],
        ["B", "wing", 1, 1],
    ]
    b = row(results.coverage, annotator="B")
    assert b.named == 3  # only Eyes (a1, a2, a7: images i1, i2) remains
    # Default threshold 3: A's wing covers 2 images and goes too.
    assert "wing" in analyze(tiny_activations, tiny_namings).dropped["concept"].tolist()


def test_pair_summary_layout(results):
    summary = results.agreement_summary.set_index("measure")
    assert summary.loc["agreement_d2", "pairs"] == 1
    assert summary.loc["agreement_d2", "min"] == summary.loc["agreement_d2", "max"] == 0.8
    assert np.isnan(summary.loc["agreement_d2", "std"])  # one pair: no sample deviation


def test_reliability_alpha_is_one_when_everyone_agrees(tiny_activations, tiny_namings):
    same = tiny_namings[tiny_namings["annotator"] == "A"]
    namings = pd.concat([same, same.assign(annotator="C")])
    results = analyze(tiny_activations, namings, min_images=1)
    assert results.reliability["alpha_named"].iloc[0] == 1.0
    pair = results.agreement.iloc[0]
    for measure in ("jaccard", "agreement_d1", "agreement_d2", "ari", "nmi", "alpha_named"):
        assert pair[measure] == 1.0, measure


def test_annotator_missing_from_a_category_is_left_out(tiny_activations, tiny_namings):
    activations = pd.concat(
        [
            tiny_activations,
            pd.DataFrame(
                [{"activation_id": "z1", "image_id": "j1", "category": "d", "x_feature": 0}]
            ),
        ]
    )
    namings = pd.concat(
        [
            tiny_namings,
            pd.DataFrame(
                [
                    {
                        "annotator": "A",
                        "category": "d",
                        "activation_id": "z1",
                        "concept": "eye",
                        "status": "named",
                    }
                ]
            ),
        ]
    )
    with pytest.warns(UserWarning, match="category 'd': no namings from B"):
        results = analyze(activations, namings, min_images=1)
    assert results.coverage[results.coverage["category"] == "d"]["annotator"].tolist() == [
        "A",
        "any",
    ]
