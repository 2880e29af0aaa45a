"""Decisions to distrust, computed by hand on the tiny study, and their ranking."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import analyze
from analysis.measures.distrust import FLAG_LEVEL, PRIOR, DistrustWords, distrust_table
from analysis.namers.synthetic import synthetic_study

SHARES = {"a1": 0.6, "a2": 0.4, "a3": 0.5, "a7": 0.5, "a4": 0.8, "a5": 0.2, "a6": 1.0}


@pytest.fixture
def study(tiny_activations, tiny_namings):
    activations = tiny_activations.assign(share=tiny_activations["activation_id"].map(SHARES))
    namings = tiny_namings.copy()
    # a6 is rejected by both: A discards it, B names it "Background".
    a6 = namings["activation_id"] == "a6"
    namings.loc[a6 & (namings["annotator"] == "A"), ["status", "concept"]] = ["discarded", ""]
    namings.loc[a6 & (namings["annotator"] == "B"), "concept"] = "Background"
    return activations, namings


def distrust(rejected: int, named: int) -> float:
    return (rejected + 0.25) / (rejected + named + 1)


def test_words_match_whole_names_made_of_background_words():
    words = DistrustWords.from_file()
    for name in ("background", "Background noise", "sky", "corner mark", "non-bird", "Not a bird"):
        assert name in words, name
    for name in ("wing", "wing edge", "bird on branch", "", "group 3", "eye and sky"):
        assert name not in words, name
    assert "wing" in DistrustWords(["wing"])


def test_decisions_by_hand(study):
    activations, namings = study
    results = analyze(activations, namings, min_images=1)
    decisions = results.distrust_decisions.set_index("image_id")
    # i1, i2: every map named by both annotators.
    assert decisions.loc["i1", "distrust"] == pytest.approx(distrust(0, 2))
    # i3: a4 (0.8) named by A, discarded by B; a5 (0.2) unnamed by A (abstains), named by B.
    assert decisions.loc["i3", "distrust"] == pytest.approx(
        0.8 * distrust(1, 1) + 0.2 * distrust(0, 1)
    )
    assert decisions.loc["i3", "rejected_evidence"] == pytest.approx(0.4)
    assert decisions.loc["i3", "unnamed_evidence"] == pytest.approx(0.1)
    assert decisions.loc["i3", "named_evidence"] == pytest.approx(0.5)
    # i4: its only map, a6, is rejected by both.
    assert decisions.loc["i4", "distrust"] == pytest.approx(distrust(2, 0))
    assert decisions["distrusted"].to_dict() == {"i1": False, "i2": False, "i3": False, "i4": True}
    evidence = decisions[["named_evidence", "unnamed_evidence", "rejected_evidence"]].sum(axis=1)
    assert evidence.to_numpy() == pytest.approx(1.0)
    row = results.distrust.iloc[0]
    assert (row["decisions"], row["distrusted"], row["distrusted_share"]) == (4, 1, 0.25)
    assert not row["flagged"]


def test_maps_weigh_equally_without_shares(study):
    activations, namings = study
    results = analyze(activations.drop(columns="share"), namings, min_images=1)
    decisions = results.distrust_decisions.set_index("image_id")
    assert decisions.loc["i3", "distrust"] == pytest.approx((distrust(1, 1) + distrust(0, 1)) / 2)


def test_the_word_list_is_configurable(study):
    activations, namings = study
    without = analyze(activations, namings, min_images=1, distrust_words=DistrustWords(["sky"]))
    decisions = without.distrust_decisions.set_index("image_id")
    assert decisions.loc["i4", "distrust"] == pytest.approx(distrust(1, 1))  # B's name counts
    assert not decisions["distrusted"].any()


def test_unnamed_maps_alone_never_make_a_decision_distrusted(tiny_activations, tiny_namings):
    unnamed = tiny_namings.assign(status="unnamed", concept="")
    results = analyze(tiny_activations, unnamed, min_images=1)
    assert results.distrust_decisions["distrust"].to_numpy() == pytest.approx(PRIOR)
    assert not results.distrust_decisions["distrusted"].any()
    discarded = tiny_namings.assign(status="discarded", concept="")
    results = analyze(tiny_activations, discarded, min_images=1)
    assert results.distrust_decisions["distrusted"].all()
    assert results.distrust["flagged"].all()


def test_ranking_flags_and_categories_nobody_named():
    decisions = pd.DataFrame(
        {
            "category": ["b", "b", "a", "a", "c", "d"],
            "image_id": ["1", "2", "3", "4", "5", "6"],
            "annotators": [2, 2, 2, 2, 2, 0],
            "distrust": [0.9, 0.6, 0.8, 0.1, 0.2, float("nan")],
            "rejected_evidence": [0.9, 0.5, 0.8, 0.0, 0.2, float("nan")],
            "unnamed_evidence": [0.0, 0.4, 0.0, 0.4, 0.0, float("nan")],
            "distrusted": [True, True, True, False, False, False],
        }
    )
    table = distrust_table(decisions)
    assert list(table["category"]) == ["b", "a", "c", "d"]
    assert list(table["rank"]) == [1, 2, 3, 4]
    assert list(table["flagged"]) == [True, True, False, False]
    assert pd.isna(table.iloc[-1]["distrusted_share"])
    assert list(distrust_table(decisions, threshold=0.9)["flagged"]) == [True, False, False, False]
    with pytest.raises(ValueError, match="threshold must be in"):
        distrust_table(decisions, threshold=1.5)
    with pytest.raises(ValueError, match="distrust_threshold must be in"):
        analyze(pd.DataFrame(), pd.DataFrame(), distrust_threshold=-1)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ordinary_studies_flag_nothing(seed):
    # Synthetic namings: a quarter of the maps unnamed, a few discarded at random.
    activations, namings = synthetic_study(categories=6, annotators=4, activations=60, seed=seed)
    results = analyze(activations, namings)
    assert not results.distrust["flagged"].any()
    assert results.distrust["distrusted_share"].max() < FLAG_LEVEL / 2
