"""A fitted namer is kept under a fingerprint of what it learnt from: the same namings and
bundle load it without learning again; other verdicts learn another; a damaged file is learnt
again, with one line, and replaced."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.namers import learnt, overlay_model
from tests.conftest import _bundle_with_maps_on


@pytest.fixture
def named_bundle(tmp_path, monkeypatch):
    """24 maps on the eye or on the tail; ann names the eye maps "eye", bob the tail maps
    "tail"; a quick model."""
    from xnn_training.data.toybirds import PARTS, make_toybirds

    monkeypatch.setattr(overlay_model, "MEMBERS", 1)
    monkeypatch.setattr(overlay_model, "EPOCHS", 2)
    monkeypatch.setenv("XNAMING_CACHE", str(tmp_path / "cache"))
    data = make_toybirds(tmp_path / "toybirds", classes=2, per_class=12, size=32, seed=2)
    images = pd.read_csv(data / "images.csv", dtype={"image_id": str})
    label = {name: number for number, name in PARTS.items()}
    part = {i: ("eye", "tail")[n % 2] for n, i in enumerate(images["image_id"])}
    _bundle_with_maps_on(data, tmp_path / "bundle", {i: label[p] for i, p in part.items()})
    activations = pd.read_csv(tmp_path / "bundle" / "activations.csv", dtype=str)
    on_eye = activations["image_id"].map(part) == "eye"
    ann = pd.DataFrame({
        "annotator": "ann", "category": activations["category"],
        "activation_id": activations["activation_id"],
        "concept": np.where(on_eye, "eye", ""), "status": np.where(on_eye, "named", "unnamed"),
    })  # fmt: skip
    bob = ann.assign(annotator="bob", concept=np.where(on_eye, "", "tail"),
                     status=np.where(on_eye, "unnamed", "named"))  # fmt: skip
    namings = pd.concat([ann, bob], ignore_index=True)
    return tmp_path / "bundle", namings, tmp_path / "cache" / "namers"


def _no_fit(*args, **kwargs):
    raise AssertionError("the namer was learnt again")


def test_the_same_namings_load_the_kept_namer(named_bundle, monkeypatch):
    bundle, namings, kept = named_bundle
    first = learnt.fit_learnt_namer(namings, bundle, annotator="ann")
    assert len(list(kept.glob("*.pt"))) == 1
    monkeypatch.setattr(learnt, "fit_overlay_model", _no_fit)
    again = learnt.fit_learnt_namer(namings, bundle, annotator="ann")
    assert again.concepts == first.concepts == ["eye"]
    for a, b in zip(first.model.nets, again.model.nets, strict=True):
        for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert np.array_equal(x.numpy(), y.numpy()), name


def test_every_annotator_of_the_table_shares_the_kept_namer(named_bundle, monkeypatch):
    bundle, namings, kept = named_bundle
    learnt.fit_learnt_namer(namings, bundle, annotator="ann")
    with monkeypatch.context() as patched:
        patched.setattr(learnt, "fit_overlay_model", _no_fit)
        bob = learnt.fit_learnt_namer(namings, bundle, annotator="bob")
    assert (bob.who, bob.concepts) == ("bob", ["tail"])
    consensus = learnt.fit_learnt_namer(namings, bundle)  # a head more: another model
    assert consensus.who == learnt.CONSENSUS
    assert len(list(kept.glob("*.pt"))) == 2


def test_other_verdicts_learn_another_namer(named_bundle):
    bundle, namings, kept = named_bundle
    learnt.fit_learnt_namer(namings, bundle, annotator="ann")
    changed = namings.copy()
    changed.loc[0, ["concept", "status"]] = ["beak", "named"]
    assert learnt.fit_learnt_namer(changed, bundle, annotator="ann").concepts == ["beak", "eye"]
    assert len(list(kept.glob("*.pt"))) == 2


def test_a_damaged_kept_namer_is_learnt_again(named_bundle, capsys):
    bundle, namings, kept = named_bundle
    learnt.fit_learnt_namer(namings, bundle, annotator="ann")
    (path,) = kept.glob("*.pt")
    path.write_bytes(b"not a model")
    assert learnt.fit_learnt_namer(namings, bundle, annotator="ann").concepts == ["eye"]
    about = [line for line in capsys.readouterr().err.splitlines() if str(path) in line]
    assert len(about) == 1, about
    assert "unreadable kept namer" in about[0]
    learnt.fit_learnt_namer(namings, bundle, annotator="ann")  # the replaced file loads
    assert "unreadable" not in capsys.readouterr().err
