"""Simulated annotators: deterministic, profile-driven, always marked simulated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.namers.annotator_profiles import DEFAULT_PROFILES, AnnotatorProfile
from analysis.namers.simulated_annotators import simulate_namings
from xnn_training.maps.part_masks import BACKGROUND


def _part_heat(rows):
    return pd.DataFrame(rows, columns=["activation_id", "category", "part", "share", "wing_open"])


def test_profiles_name_by_the_strongest_part_in_their_own_words():
    part_heat = _part_heat(
        [
            ("a", "c1", "eye", 0.7, False),
            ("a", "c1", "wing", 0.3, False),
            ("b", "c1", "wing", 0.6, True),
            ("b", "c1", BACKGROUND, 0.4, True),
            ("c", "c1", "beak", 0.2, False),  # too diffuse for everyone
            ("c", "c1", "eye", 0.2, False),
            ("c", "c1", BACKGROUND, 0.6, False),
            ("d", "c1", "beak", 0.2, False),
            ("d", "c1", "wing", 0.25, False),
            ("d", "c1", "tail", 0.25, False),
            ("d", "c1", "feet", 0.3, False),
        ]
    )
    precise = AnnotatorProfile("sim-p", split_wing=True, min_focus=0.35, error_rate=0.0)
    coarse = AnnotatorProfile(
        "sim-c", merge={"eye": "head"}, words={"head": "whole head"}, error_rate=0.0
    )
    tidy = simulate_namings(part_heat, [precise, coarse], seed=1)
    by = tidy.set_index(["annotator", "activation_id"])
    assert by.loc[("sim-p", "a"), "concept"] == "eye"
    assert by.loc[("sim-c", "a"), "concept"] == "whole head"
    assert by.loc[("sim-p", "b"), "concept"] == "open wing"
    assert by.loc[("sim-c", "b"), "concept"] == "wing"
    assert by.loc[("sim-p", "d"), "status"] == "unnamed"  # strongest part holds 0.3 < 0.35
    assert by.loc[("sim-p", "d"), "concept"] == ""
    assert set(by.loc[(slice(None), "c"), "status"]) <= {"unnamed", "discarded"}
    assert tidy["simulated"].all()
    assert list(tidy.columns[:5]) == ["annotator", "category", "activation_id", "concept", "status"]


def test_background_maps_are_discarded_or_left_unsorted():
    part_heat = _part_heat(
        [(f"m{i}", "c1", BACKGROUND, 0.9, False) for i in range(200)]
        + [(f"m{i}", "c1", "eye", 0.1, False) for i in range(200)]
    )
    always = AnnotatorProfile("sim-a", discard_rate=1.0)
    never = AnnotatorProfile("sim-n", discard_rate=0.0)
    tidy = simulate_namings(part_heat, [always, never])
    assert set(tidy[tidy.annotator == "sim-a"]["status"]) == {"discarded"}
    assert set(tidy[tidy.annotator == "sim-n"]["status"]) == {"unnamed"}


def test_error_rate_names_the_second_part_about_that_often():
    part_heat = _part_heat(
        [(f"m{i}", "c1", "eye", 0.6, False) for i in range(2000)]
        + [(f"m{i}", "c1", "tail", 0.4, False) for i in range(2000)]
    )
    tidy = simulate_namings(part_heat, [AnnotatorProfile("sim-e", error_rate=0.1)], seed=3)
    slips = (tidy["concept"] == "tail").mean()
    assert 0.08 < slips < 0.12


def test_same_seed_same_namings_other_seed_other_slips():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(300):
        shares = rng.dirichlet(np.ones(4))
        for part, share in zip(["eye", "wing", "tail", BACKGROUND], shares, strict=True):
            rows.append((f"m{i}", "c1", part, share, bool(i % 2)))
    part_heat = _part_heat(rows)
    first = simulate_namings(part_heat, seed=5)
    pd.testing.assert_frame_equal(first, simulate_namings(part_heat, seed=5))
    assert not first.equals(simulate_namings(part_heat, seed=6))
    assert sorted(first["annotator"].unique()) == sorted(p.name for p in DEFAULT_PROFILES)


def test_bad_profiles_and_inputs_are_refused():
    with pytest.raises(ValueError, match="start with 'sim-'"):
        AnnotatorProfile("alice")
    with pytest.raises(ValueError, match="error_rate must be in"):
        AnnotatorProfile("sim-x", error_rate=1.5)
    with pytest.raises(ValueError, match="distinct"):
        simulate_namings(_part_heat([]), [AnnotatorProfile("sim-x"), AnnotatorProfile("sim-x")])
    with pytest.raises(ValueError, match=r"lacks the columns \['wing_open'\]"):
        simulate_namings(pd.DataFrame(columns=["activation_id", "category", "part", "share"]))


def test_simulate_command_on_real_toybirds(toybirds_bundle, tmp_path, capsys):
    from xnaming.cli import main

    _, bundle, on_part, _ = toybirds_bundle
    out = tmp_path / "namings.csv"
    assert main(["simulate", str(bundle), "--annotators", "7", "--out", str(out)]) == 0

    namings = pd.read_csv(out, keep_default_na=False, dtype=str)
    assert namings["annotator"].nunique() == 7
    assert len(namings) == 7 * len(on_part)
    assert set(namings["simulated"]) == {"True"}
    assert namings["annotator"].str.startswith("sim-").all()
    assert set(namings["status"]) <= {"named", "unnamed", "discarded"}
    assert "not people's" in capsys.readouterr().out
