"""``xnaming train xnn --namings --bundle``: the concept term worked by hand, an aligned run
that loads like any xNN run and says which X-feature carries which concept, the consensus of
several annotators, and the refusals."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from analysis.namers.verdicts import concept_verdicts
from xnaming.cli import main
from xnn_training.nets.losses import concept_alignment
from xnn_training.training.runs import load_xnn_run


def test_the_concept_term_moves_the_right_x_feature():
    # One class, two images, two X-features: X-feature 0 is the concept "wing", 1 is free.
    terms = torch.tensor([[[2.0, 1.0], [0.0, 3.0]]], requires_grad=True)  # (C, B, k)
    groups = torch.eye(2)[None]  # X-feature j -> group j
    # Image 0: its wing map gave 3 to the score, nothing else; image 1: only unnamed evidence.
    targets = torch.tensor([[[3.0, 0.0], [0.0, 3.0]]])
    mask = torch.ones_like(targets, dtype=torch.bool)
    loss = concept_alignment(terms, groups, targets, mask)
    assert loss.item() == pytest.approx(((2 - 3) ** 2 + (1 - 0) ** 2) / 4)
    loss.sum().backward()
    # Gradient descent raises the wing X-feature on image 0 and lowers the free one there;
    # image 1 already matches.
    assert terms.grad.tolist() == [[[-0.5, 0.5], [0.0, 0.0]]]
    unmasked = concept_alignment(terms, groups, targets, torch.zeros_like(mask))
    assert unmasked.item() == 0.0  # a class without annotated images is not pulled


def test_the_consensus_reads_every_annotator_in_the_reference_words():
    rows = []
    for i in range(6):  # ann-a says "wing"/"head", ann-b "feathers"/"face" for the same maps
        a, b = ("wing", "feathers") if i < 4 else ("head", "face")
        rows += [{"annotator": "ann-a", "category": "c", "activation_id": f"m{i}",
                  "concept": a, "status": "named"},
                 {"annotator": "ann-b", "category": "c", "activation_id": f"m{i}",
                  "concept": b, "status": "named"}]  # fmt: skip
    rows[1]["status"] = "unnamed"  # ann-b left m0 unnamed: ann-a, the reference, decides
    consensus = concept_verdicts(pd.DataFrame(rows))
    assert consensus.to_dict() == {f"m{i}": "wing" if i < 4 else "head" for i in range(6)}
    assert concept_verdicts(pd.DataFrame(rows), "ann-b")["m5"] == "face"
    with pytest.raises(ValueError, match="ann-c"):
        concept_verdicts(pd.DataFrame(rows), "ann-c")


def test_the_consensus_of_annotators_who_named_different_maps():
    # ann-a names m0-m3 "wing", ann-b only m4 "tail": no map named by both, no word matched.
    said = (("ann-a", "wing", range(4)), ("ann-b", "tail", [4]))
    rows = [{"annotator": who, "category": "c", "activation_id": f"m{i}",
             "concept": word if i in named else "",
             "status": "named" if i in named else "unnamed"}
            for i in range(5) for who, word, named in said]  # fmt: skip
    consensus = concept_verdicts(pd.DataFrame(rows))
    assert consensus.to_dict() == {"m0": "wing", "m1": "wing", "m2": "wing", "m3": "wing", "m4": ""}


@pytest.fixture(scope="module")
def feedback(toybirds_run, tmp_path_factory):
    from xnn_training.maps.explain import explain

    root = tmp_path_factory.mktemp("align")
    return explain(toybirds_run.dnn, toybirds_run.xnn, toybirds_run.data, root / "fb",
                   split="feedback", embedding_layers=())  # fmt: skip


def _namings(bundle, path, concept_of):
    activations = pd.read_csv(bundle / "activations.csv", dtype=str)
    rows = [{"annotator": "ann", "category": a.category, "activation_id": a.activation_id,
             "concept": concept_of(k) or "", "status": "named" if concept_of(k) else "unnamed"}
            for k, a in enumerate(activations.itertuples())]  # fmt: skip
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _args(run, bundle, namings, out):
    return ["train", "xnn", "--dnn", str(run.dnn), "--namings", str(namings), "--bundle",
            str(bundle), "--out", str(out), "--epochs", "2", "--device", "cpu"]  # fmt: skip


@pytest.mark.slow
def test_an_aligned_run_loads_like_any_and_names_its_x_features(toybirds_run, feedback, tmp_path):
    namings = _namings(feedback, tmp_path / "n.csv", lambda k: ["wing", "head", None][k % 3])
    assert main(_args(toybirds_run, feedback, namings, tmp_path / "aligned")) == 0
    run = load_xnn_run(tmp_path / "aligned")
    named = pd.read_csv(namings).query("status == 'named'")
    for category, rows in named.groupby("category"):
        carried = run.concepts[category]
        assert set(carried.values()) == set(rows["concept"])
        assert run.xnn.k >= len(carried) + 1  # at least one free X-feature
    assert (tmp_path / "aligned" / "fidelity.csv").is_file()
    assert load_xnn_run(toybirds_run.xnn).concepts == {}  # an xNN from before: no names
    config = json.loads((tmp_path / "aligned" / "config.json").read_text())
    assert config["alignment"]["annotator"] == "consensus"


def test_namings_that_name_nothing_are_refused(toybirds_run, feedback, tmp_path, capsys):
    namings = _namings(feedback, tmp_path / "n.csv", lambda k: None)
    assert main(_args(toybirds_run, feedback, namings, tmp_path / "out")) == 3
    err = capsys.readouterr().err
    assert "nothing to align" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    args = _args(toybirds_run, feedback, namings, tmp_path / "out")
    assert main([a for a in args if a not in ("--bundle", str(feedback))]) == 3
    assert "give both" in capsys.readouterr().err


def test_the_warm_start_scores_as_the_explained_xnn_did(toybirds_run, feedback, tmp_path):
    from xnn_training.training.align import align_xnn

    namings = _namings(feedback, tmp_path / "n.csv", lambda k: ["wing", "head", None][k % 3])
    aligned = align_xnn(toybirds_run.dnn, tmp_path / "aligned", namings=namings, bundle=feedback,
                        epochs=0, device="cpu")  # fmt: skip
    before, after = load_xnn_run(toybirds_run.xnn), load_xnn_run(aligned)
    assert after.xnn.k >= before.xnn.k  # every old X-feature kept, maybe fresh ones after
    features = torch.rand(16, before.xnn.in_features) * 3
    with torch.no_grad():
        torch.testing.assert_close(after.xnn(features)["scores"], before.xnn(features)["scores"])


def _explain_and_analyze(run, xnn, out, namings_of, *extra):
    bundle = out / "bundle"
    assert (
        main(
            [
                "explain",
                "--dnn",
                str(run.dnn),
                "--xnn",
                str(xnn),
                "--data",
                str(run.data),
                "--out",
                str(bundle),
                "--embedding-layers",
                "none",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    namings = namings_of(bundle, out / "namings.csv")
    assert (
        main(
            [
                "analyze",
                "--activations",
                str(bundle),
                "--namings",
                str(namings),
                "--out",
                str(out / "report"),
                "--min-images",
                "1",
                "--no-figures",
                *extra,
            ]
        )
        == 0
    )
    return bundle, namings, out / "report"


@pytest.mark.slow
def test_the_report_shows_what_each_x_feature_carries(toybirds_run, feedback, tmp_path):
    train_namings = _namings(feedback, tmp_path / "n.csv", lambda k: ["wing", "head", None][k % 3])
    assert main(_args(toybirds_run, feedback, train_namings, tmp_path / "aligned")) == 0

    def test_namings(bundle, path):  # the test split's maps, named by another pattern
        return _namings(bundle, path, lambda k: ["head", "wing", "wing", None][k % 4])

    _, _, before = _explain_and_analyze(toybirds_run, toybirds_run.xnn, tmp_path / "before",
                                        test_namings)  # fmt: skip
    bundle, namings, after = _explain_and_analyze(
        toybirds_run, tmp_path / "aligned", tmp_path / "after", test_namings,
        "--compare", str(before),
    )  # fmt: skip
    carried = load_xnn_run(tmp_path / "aligned").concepts
    assert json.loads((bundle / "manifest.json").read_text())["concepts"] == {
        c: {str(k): name for k, name in m.items()} for c, m in carried.items()
    }
    # carried.csv against a count made here from the files
    maps = pd.read_csv(bundle / "activations.csv", dtype=str).merge(
        pd.read_csv(namings, dtype=str).fillna(""), on=["category", "activation_id"]
    )
    table = pd.read_csv(after / "carried.csv")
    for row in table[table["carries"] != "(free)"].itertuples():
        on_k = maps[(maps["category"] == row.category) & (maps["x_feature"] == str(row.x_feature))]
        named = on_k[on_k["status"] == "named"]
        assert row.named == len(named)
        if len(named):
            assert row.named_as_carried == pytest.approx((named["concept"] == row.carries).mean())
    assert set(table["carries"]) - {"(free)"} <= {"wing", "head"}
    assert 'id="carried"' not in (before / "report.html").read_text()
    assert 'id="carried"' in (after / "report.html").read_text()
    compare = pd.read_csv(after / "compare_purity.csv")
    assert set(compare["annotator"]) == {"ann"}
    assert compare["xc_purity_before"].notna().all()
    assert compare["xc_purity_after"].notna().all()
    assert compare["xc_carried_before"].isna().all()
    purity = pd.read_csv(after / "purity.csv").set_index("category")
    assert compare.set_index("category")["xc_carried_after"].equals(purity["xc_carried"])
    html = (after / "report.html").read_text()
    assert 'id="purity-before-after"' in html
    assert "aligned with the consensus of the annotators" in html
