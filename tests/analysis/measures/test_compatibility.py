"""Linguistic compatibility of concept names (Table 6 rules)."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import NameJudge, normalize_name
from analysis.measures.compatibility import compatibility_table


@pytest.fixture
def judge():
    return NameJudge.from_files()


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        ("Eye", "eye", "exact"),
        ("wings", "Wing", "exact"),
        ("Wing and Eye", "eye, wing", "exact"),  # word order, filler, punctuation
        ("beak", "bill", "exact"),  # shipped synonyms
        ("bill", "nose", "exact"),  # synonyms chain through beak
        ("top of the head", "crown", "exact"),  # phrase synonym
        ("wing", "open wing", "subset"),
        ("Wing", "Wing and Eye", "subset"),
        ("bill tip", "beak", "subset"),  # synonyms apply word by word
        ("tail", "wing", "none"),
        ("feet", "foot", "exact"),
        ("group 3", "group 3", "none"),  # generated names carry no words
        ("", "eye", "none"),
    ],
)
def test_rules(judge, a, b, verdict):
    assert judge.judge(a, b) == verdict
    assert judge.judge(b, a) == verdict


def test_normalize_name():
    assert normalize_name("The Open-Wings!") == ("open", "wing")
    assert normalize_name("bodies") == ("body",)


def test_judgements_override_in_either_order(tmp_path):
    path = tmp_path / "judgements.csv"
    pd.DataFrame(
        [
            {"name_a": "Eye", "name_b": "head", "compatibility": "subset"},
            {"name_a": "beak", "name_b": "bill", "compatibility": "none"},
        ]
    ).to_csv(path, index=False)
    judge = NameJudge.from_files(judgements=path)
    assert judge.judge("head", "eyes") == "subset"
    assert judge.judge("bill", "beak") == "none"
    assert judge.judge("wing", "wings") == "exact"


def test_user_synonyms_add_to_the_shipped_ones(tmp_path):
    path = tmp_path / "synonyms.csv"
    path.write_text("name,synonym\nthroat,neck\n")
    judge = NameJudge.from_files(synonyms=path)
    assert judge.judge("throat", "neck") == "exact"
    assert judge.judge("beak", "bill") == "exact"
    assert NameJudge.from_files(synonyms=path, shipped_synonyms=False).judge("beak", "bill") == (
        "none"
    )


def test_bad_files_are_named(tmp_path):
    path = tmp_path / "judgements.csv"
    path.write_text("name_a,name_b,compatibility\neye,head,maybe\n")
    with pytest.raises(ValueError, match="row 2: compatibility must be one of exact, subset, none"):
        NameJudge.from_files(judgements=path)
    path.write_text("a,b\n")
    with pytest.raises(ValueError, match="needs the columns name_a, name_b, compatibility"):
        NameJudge.from_files(judgements=path)


def test_weighted_by_edge_weight(judge):
    key = {"category": "c", "annotator_a": "A", "annotator_b": "B"}
    matchings = pd.DataFrame(
        [
            key | {"d": 2, "set": 0, "concept_a": "eye", "concept_b": "Eyes", "weight": 6},
            key | {"d": 2, "set": 0, "concept_a": "eye", "concept_b": "head", "weight": 3},
            key | {"d": 2, "set": 1, "concept_a": "wing", "concept_b": "open wing", "weight": 1},
        ]
    )
    table = compatibility_table(matchings, pd.DataFrame([key]), judge=judge)
    d2 = table[table["d"] == 2].iloc[0]
    assert d2["exact"] == pytest.approx(0.6)
    assert d2["subset"] == pytest.approx(0.7)
    assert d2["matched_weight"] == 10
    assert table[table["d"] == 1][["exact", "subset"]].isna().all(axis=None)
