"""``xnaming discover``: machine namings from the bundle's embeddings, marked machine-made, that
``xnaming analyze`` takes and that agree with the parts better than chance."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis import analyze, write_report
from analysis.inputs import check_namings, load_namings
from analysis.namers.discover import (
    agreement_against,
    discover_namings,
    place_name,
    shuffled_groups,
)
from label_config import MACHINE, MADE_BY, NAMINGS_COLUMNS
from tests.ls_backend.bundle_factory import make_bundle, read_parts
from xnaming.cli import main
from xnn_training.bundle.io import read_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A hand-made bundle whose embeddings say which part each map shows."""
    root = tmp_path_factory.mktemp("discover")
    return make_bundle(
        root / "bundle", categories=("cardinal", "jay", "robin"), images_per_category=12,
        embeddings=True,
    )  # fmt: skip


def _parts_as_namings(bundle) -> pd.DataFrame:
    """What a careful person would say: each map named after the part it lies on."""
    parts = read_parts(bundle).merge(read_bundle(bundle).activations, on="activation_id")
    return pd.DataFrame(
        {
            "annotator": "person@example.org",
            "category": parts["category"],
            "activation_id": parts["activation_id"],
            "concept": parts["part"],
            "status": "named",
        }
    )


@pytest.mark.parametrize(
    ("dx", "dy", "name"),
    [(0, 0, "centre"), (-1, -1, "upper-left"), (0.1, 0.8, "lower"), (0.9, 0.1, "right")],
)
def test_place_names(dx, dy, name):
    assert place_name(dx, dy) == name


def test_discover_names_every_map_once_marked_as_machine_made(bundle):
    auto = discover_namings(bundle, annotator="auto-test")
    activations = read_bundle(bundle).activations
    assert list(auto.columns) == [*NAMINGS_COLUMNS, MADE_BY]
    assert list(auto["activation_id"]) == list(activations["activation_id"])
    assert set(auto["annotator"]) == {"auto-test"}
    assert set(auto[MADE_BY]) == {MACHINE}
    assert set(auto["status"]) <= {"named", "unnamed"}
    assert (auto["status"] == "named").mean() > 0.5
    checked = check_namings(auto, activations)  # analyze's own check
    assert set(checked[MADE_BY]) == {MACHINE}
    assert not checked["simulated"].any()
    assert auto.equals(discover_namings(bundle, annotator="auto-test"))  # deterministic


def _agreement_and_chance(
    activations: pd.DataFrame, auto: pd.DataFrame, others: pd.DataFrame
) -> tuple[float, list[float]]:
    """Mean D = 1 agreement of ``auto``'s namings with ``others``', and that of 20 random
    groupings with the same group sizes (seeds 0-19)."""

    def d1(machine: pd.DataFrame) -> float:
        table = agreement_against(activations, pd.concat([machine, others]), "auto-embeddings")
        return float(table["agreement_d1"].mean())

    chance = [d1(shuffled_groups(auto, "auto-embeddings", seed=seed)) for seed in range(20)]
    return d1(auto), chance


def test_discover_finds_the_parts_better_than_chance(bundle):
    """The embeddings of this bundle carry the part: the machine groups agree with the parts
    more than every one of 20 random groupings with the same group sizes."""
    activations = read_bundle(bundle).activations
    auto = discover_namings(bundle)
    person = _parts_as_namings(bundle)
    found, chance = _agreement_and_chance(activations, auto, person)
    assert found > max(chance)
    assert found > 0.9  # the parts are in the embeddings: found


def test_shuffled_groups_keep_the_named_maps_and_group_sizes(bundle):
    auto = discover_namings(bundle)
    shuffled = shuffled_groups(auto, "auto-embeddings", seed=1)
    assert (shuffled["status"] == auto["status"]).all()
    for category, rows in auto.groupby("category"):
        mine = shuffled.loc[rows.index]
        assert sorted(mine["concept"]) == sorted(rows["concept"]), category
    assert not shuffled["concept"].equals(auto["concept"])


def test_analyze_says_the_machine_namings_are_machine_made(bundle, tmp_path):
    out = tmp_path / "auto.csv"
    assert main(["discover", str(bundle), "--out", str(out)]) == 0
    person = tmp_path / "person.csv"
    _parts_as_namings(bundle).to_csv(person, index=False)
    activations = read_bundle(bundle).activations
    namings = load_namings([person, out], activations)  # one file with the marker, one without
    assert set(namings.loc[namings["annotator"] == "person@example.org", MADE_BY]) == {"person"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = analyze(activations[["activation_id", "image_id", "category", "x_feature"]],
                          namings)  # fmt: skip
    assert results.notes[0].startswith("Machine namings: auto-embeddings are made by a machine")
    assert not any("Simulated" in note for note in results.notes)
    assert set(results.agreement["annotator_a"]) | set(results.agreement["annotator_b"]) == {
        "auto-embeddings",
        "person@example.org",
    }
    write_report(results, tmp_path / "report", figures=False)
    assert "Machine namings: auto-embeddings" in (tmp_path / "report" / "report.html").read_text()
    # and through the command line, as a user runs it
    assert main(["analyze", "--activations", str(bundle), "--namings", str(person), str(out),
                 "--out", str(tmp_path / "cli"), "--no-figures"]) == 0  # fmt: skip


def test_made_by_reads_old_and_new_markers():
    base = pd.DataFrame(
        {
            "annotator": ["sim-a", "auto-x", "p@example.org"],
            "category": "c",
            "activation_id": ["a", "b", "c"],
            "concept": "beak",
            "status": "named",
        }
    )
    old = check_namings(base.assign(simulated=["True", "False", "False"]))
    assert list(old[MADE_BY]) == ["simulated", "person", "person"]
    assert list(old["simulated"]) == [True, False, False]
    new = check_namings(base.assign(made_by=["simulated", "Machine", ""]))
    assert list(new[MADE_BY]) == ["simulated", "machine", "person"]
    assert list(new["simulated"]) == [True, False, False]
    assert MADE_BY not in check_namings(base).columns  # people's files stay as they were
    with pytest.raises(ValueError, match=r"made_by must be one of .*'robot'.*row\(s\) 3"):
        check_namings(base.assign(made_by=["simulated", "robot", ""]))


def test_discover_refuses_bad_input(tmp_path, capsys):
    old = make_bundle(tmp_path / "old")
    assert main(["discover", str(old), "--out", str(tmp_path / "a.csv")]) == 3
    assert "re-run `xnaming explain`" in capsys.readouterr().err
    with pytest.raises(ValueError, match="start with 'auto-'"):
        discover_namings(old, annotator="sim-robot")
    assert not (tmp_path / "a.csv").exists()


def test_uncertain_maps_stay_unnamed(tmp_path):
    """Maps of a part seen in fewer than three images form no concept of their own."""
    bundle = make_bundle(tmp_path / "b", categories=("cardinal",), images_per_category=12,
                         embeddings=True)  # fmt: skip
    auto = discover_namings(bundle, min_images=13)  # no group can cover 13 of 12 images
    assert (auto["status"] == "unnamed").all()
    assert np.all(auto["concept"] == "")


@pytest.fixture(scope="module")
def toybirds(tmp_path_factory, one_torch_thread):
    """A real toybirds run (3 species, 50 test images each; a shorter training than the demo's),
    its bundle with embeddings and five simulated annotators' namings of it. (Trained for 6
    epochs instead the maps are too weak to name: discover then beats only most shuffles.)"""
    from analysis.namers.simulated_annotators import simulate_bundle
    from xnn_training import make_toybirds, train_dnn, train_xnn
    from xnn_training.maps.explain import explain

    root = tmp_path_factory.mktemp("toybirds-discover")
    data = make_toybirds(root / "data", classes=3, per_class=150, seed=3)
    dnn = train_dnn(data, root / "dnn", arch="toycnn", epochs=12)
    xnn = train_xnn(dnn, root / "xnn", epochs=100)
    bundle = explain(dnn, xnn, data, root / "bundle", threads=1)
    return bundle, simulate_bundle(bundle, data, annotators=5, seed=3)


@pytest.mark.slow
def test_on_toybirds_discover_agrees_with_the_simulated_annotators_beyond_chance(toybirds):
    """Agreement (D = 1, mean over categories and the five simulated annotators) of discover's
    namings is above that of every one of 20 random groupings with the same group sizes."""
    bundle, simulated = toybirds
    activations = read_bundle(bundle).activations
    auto = discover_namings(bundle)
    assert (auto["status"] == "named").mean() > 0.5
    found, chance = _agreement_and_chance(activations, auto, simulated)
    assert found > max(chance)
