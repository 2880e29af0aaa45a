"""Properties every measure must have, on random namings (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from analysis import analyze, named_alpha, pair_agreement
from analysis.measures.agreement import adjusted_rand, normalized_mutual_info
from analysis.measures.matching import intersection_graph

labelings = (
    st.integers(1, 30)
    .flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(-1, 4), min_size=n, max_size=n),
            st.lists(st.integers(-1, 4), min_size=n, max_size=n),
        )
    )
    .map(lambda ab: (np.array(ab[0]), np.array(ab[1])))
)

SYMMETRIC = ("jaccard", "agreement_d1", "agreement_d2", "ari", "nmi", "alpha_named", "both_named")


def measures(a, b):
    return pair_agreement(a, b, 5, 5)[0]


@settings(max_examples=200, deadline=None)
@given(labelings)
def test_bounds_and_symmetry(ab):
    a, b = ab
    forward, backward = measures(a, b), measures(b, a)
    for name in SYMMETRIC:
        assert forward[name] == pytest.approx(backward[name], nan_ok=True), name
    for name in ("jaccard", "agreement_d1", "agreement_d2", "nmi"):
        value = forward[name]
        assert np.isnan(value) or 0.0 <= value <= 1.0 + 1e-12, name
    if forward["both_named"]:
        assert forward["agreement_d1"] <= forward["agreement_d2"] <= forward["agreement_d2_bound"]
        assert -1.0 <= forward["ari"] <= 1.0 + 1e-12


@settings(max_examples=100, deadline=None)
@given(labelings, st.permutations(range(5)), st.permutations(range(5)))
def test_invariant_to_renaming_concepts(ab, pa, pb):
    a, b = ab
    rename = lambda labels, p: np.where(labels >= 0, np.array(p)[np.maximum(labels, 0)], -1)  # noqa: E731
    original, renamed = measures(a, b), measures(rename(a, pa), rename(b, pb))
    for name in (*SYMMETRIC, "named_a", "named_b"):
        assert original[name] == pytest.approx(renamed[name], nan_ok=True), name


@settings(max_examples=100, deadline=None)
@given(labelings)
def test_self_comparison_scores_one(ab):
    a, _ = ab
    if (a >= 0).sum() == 0:
        return
    same = measures(a, a)
    for name in ("jaccard", "agreement_d1", "agreement_d2", "ari", "nmi"):
        assert same[name] == pytest.approx(1.0, abs=1e-12), name


@settings(max_examples=200, deadline=None)
@given(labelings)
def test_ari_and_nmi_from_contingency_equal_scikit_learn(ab):
    a, b = ab
    both = (a >= 0) & (b >= 0)
    if not both.any():
        return
    w = intersection_graph(a, b, 5, 5)
    assert adjusted_rand(w) == pytest.approx(adjusted_rand_score(a[both], b[both]))
    assert normalized_mutual_info(w) == pytest.approx(
        normalized_mutual_info_score(a[both], b[both])
    )


def random_study(seed: int, annotators: int = 3, activations: int = 25):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 10, activations)
    acts = pd.DataFrame(
        {
            "activation_id": [f"a{k}" for k in range(activations)],
            "image_id": [f"i{i}" for i in images],
            "category": rng.choice(["c1", "c2"], activations),
            "x_feature": rng.integers(0, 4, activations),
        }
    )
    rows = []
    for annotator in range(annotators):
        for k in range(activations):
            concept = int(rng.integers(-1, 4))
            rows.append(
                {
                    "annotator": annotator,  # integer labels: must behave like strings
                    "category": acts["category"][k],
                    "activation_id": f"a{k}",
                    "concept": concept if concept >= 0 else "",
                    "status": "named" if concept >= 0 else "unnamed",
                }
            )
    return acts, pd.DataFrame(rows)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000))
def test_tables_are_bounded_and_label_types_do_not_matter(seed):
    acts, namings = random_study(seed)
    as_ints = analyze(acts, namings, min_images=1)
    as_text = analyze(
        acts,
        namings.assign(
            concept=namings["concept"].map(lambda c: f"concept {c}" if c != "" else ""),
            annotator=namings["annotator"].astype(str),
        ),
        min_images=1,
    )
    for name in ("coverage", "purity", "named_by", "agreement", "compatibility"):
        left = as_ints.tables()[name].select_dtypes("number")
        right = as_text.tables()[name].select_dtypes("number")
        pd.testing.assert_frame_equal(left, right, check_dtype=False)
    bounded = {
        "coverage": ["activation_coverage", "partial_coverage", "complete_coverage"],
        "purity": ["cx_purity", "xc_purity"],
        "named_by": ["fraction"],
        "agreement": ["jaccard", "agreement_d1", "agreement_d2", "nmi"],
        "compatibility": ["exact", "subset"],
        "summaries": ["fraction"],
    }
    for name, columns in bounded.items():
        values = as_ints.tables()[name][columns].to_numpy(dtype=float)
        values = values[~np.isnan(values)]
        assert ((values >= 0) & (values <= 1 + 1e-12)).all(), name
    assert as_ints.named_by.groupby("category")["fraction"].sum().to_numpy() == pytest.approx(1)
    assert as_ints.summaries.groupby(["category", "annotator"])["fraction"].sum().to_numpy() == (
        pytest.approx(1)
    )
    compat = as_ints.compatibility
    assert (compat["exact"].fillna(0) <= compat["subset"].fillna(0) + 1e-12).all()


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 40).flatmap(lambda n: st.lists(st.booleans(), min_size=2 * n, max_size=2 * n))
)
def test_pair_alpha_closed_form_equals_krippendorff(values):
    import krippendorff

    named = np.array(values).reshape(2, -1)
    if np.unique(named).size < 2:
        assert np.isnan(named_alpha(named))
        return
    expected = krippendorff.alpha(
        reliability_data=named.astype(float), level_of_measurement="nominal"
    )
    assert named_alpha(named) == pytest.approx(expected)
