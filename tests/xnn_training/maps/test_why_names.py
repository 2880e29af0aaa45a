"""``xnaming why --namings --bundle``: each map of a new image named as an annotator named the
maps of a bundle, by a model learnt from those namings; and the refusals, one line each.

The annotator here follows a rule the image and the map show (the species' crown colour, where
the hot spot lies), so the test can tell a namer that learnt it from one that did not."""

from __future__ import annotations

import pandas as pd
import pytest

from xnaming.cli import main

pytestmark = pytest.mark.slow


def _rule(maps: pd.DataFrame) -> pd.Series:
    """The rule annotator: a map is named after its species' crown colour, as the DNN's
    features under it show; a map whose hot spot lies low in the image is left unnamed."""
    crown = maps["category"].str.split("_").str[1] + " crown"
    return crown.where(maps["hot_y"] < 0.5, "")


def _namings(bundle, path):
    activations = pd.read_csv(bundle / "activations.csv", dtype=str)
    geometry = pd.read_csv(bundle / "geometry.csv", dtype={"activation_id": str})
    said = _rule(activations.merge(geometry, on=["activation_id", "image_id"])).to_numpy()
    pd.DataFrame({
        "annotator": "ann", "category": activations["category"],
        "activation_id": activations["activation_id"], "concept": said,
        "status": ["named" if s else "unnamed" for s in said],
    }).to_csv(path, index=False)  # fmt: skip
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run like the shared one on more images: the namer needs a few dozen named maps."""
    from tests.xnn_training.conftest import DNN_SETTINGS, XNN_SETTINGS, ToybirdsRun
    from xnn_training import make_toybirds, train_dnn, train_xnn

    root = tmp_path_factory.mktemp("why-names-run")
    data = make_toybirds(root / "data", classes=3, per_class=40, size=32, seed=1)
    dnn = train_dnn(data, root / "dnn", **(DNN_SETTINGS | {"epochs": 12}))
    return ToybirdsRun(data, dnn, train_xnn(dnn, root / "xnn", **XNN_SETTINGS | {"epochs": 30}))


@pytest.fixture(scope="module")
def named_bundles(run, tmp_path_factory):
    """The training split's bundle named by the rule annotator, and the test split explained as
    why explains it (the predicted class)."""
    from xnn_training.maps.explain import explain

    root = tmp_path_factory.mktemp("why-names")
    train = explain(run.dnn, run.xnn, run.data, root / "train", split="train",
                    embedding_layers=(), device="cpu")  # fmt: skip
    test = explain(run.dnn, run.xnn, run.data, root / "test", split="test",
                   explain="predicted", embedding_layers=(), device="cpu")  # fmt: skip
    return train, _namings(train, root / "namings.csv"), test


def _why(run, bundle, namings, out, *extra):
    images = pd.read_csv(run.data / "images.csv").query("split == 'test'")
    files = [str(run.data / p) for p in images["image_path"]]
    return main(["why", "--dnn", str(run.dnn), "--xnn", str(run.xnn), *files, "--out", str(out),
                 "--namings", str(namings), "--bundle", str(bundle), "--device", "cpu",
                 *extra])  # fmt: skip


def test_why_names_new_maps_as_the_annotator_named_the_bundle(run, named_bundles,
                                                              tmp_path):  # fmt: skip
    train, namings, test = named_bundles
    assert _why(run, train, namings, tmp_path / "why", "--annotator", "ann") == 0
    table = pd.read_csv(tmp_path / "why" / "why.csv", keep_default_na=False)
    table = table[table["overlay_path"] != ""]
    ids = table["image_path"].map(lambda p: p.rsplit("/", 1)[1].removesuffix(".png"))
    said = pd.Series(table["concept"].to_numpy(), index=ids + ":x" + table["x_feature"].astype(str))
    maps = pd.read_csv(test / "activations.csv").merge(pd.read_csv(test / "geometry.csv"))
    truth = _rule(maps.set_index("activation_id")).replace("", "other")
    assert set(said.index) == set(truth.index)  # why's maps are explain's, map for map
    assert set(said) <= set(truth) | {"other"}
    agree = (said == truth.loc[said.index]).mean()
    assert agree >= 0.8, f"the namer agreed with the rule on {agree:.0%} of the test maps"
    summary = pd.read_csv(tmp_path / "why" / "summary.csv")
    assert summary["explanation"].str.contains("crown").any()
    assert "named as ann would name it" in (tmp_path / "why" / "why.html").read_text()


def test_why_refuses_namings_it_cannot_learn_from(run, named_bundles, tmp_path, capsys):
    train, namings, test = named_bundles
    checks = [
        ((test, namings), "are not in the bundle"),
        ((tmp_path / "nowhere", namings), "not a map bundle"),
    ]
    nothing = tmp_path / "nothing.csv"
    pd.read_csv(namings).assign(concept="", status="unnamed").to_csv(nothing, index=False)
    checks.append(((train, nothing), "too few"))
    for (bundle, table), message in checks:
        assert _why(run, bundle, table, tmp_path / "out") == 3
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert message in err[0]
    assert _why(run, train, namings, tmp_path / "out", "--annotator", "bob") == 3
    assert "'bob' judged no map" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_namer_reads_a_new_image_as_it_read_the_bundles(run, named_bundles):
    """It learnt from the bundle's display copies; why must give it the same pixels for the
    same image, not the sharper original (a model of the copies misreads the originals)."""
    import torch

    from analysis.namers.learnt import _named_maps
    from analysis.namers.overlay_model import overlay_inputs
    from xnn_training.bundle.io import read_bundle
    from xnn_training.data.datasets import image_transform
    from xnn_training.maps.explain import display_image

    _, _, test = named_bundles
    content = read_bundle(test)
    first = content.activations.iloc[0]
    learnt_from = _named_maps(content, [first["activation_id"]])[0][0]
    images = pd.read_csv(run.data / "images.csv", dtype={"image_id": str}).set_index("image_id")
    side = learnt_from.shape[-1]
    shown = display_image(run.data / images.loc[first["image_id"], "image_path"], (side, side))
    heat = torch.ones(1, side, side)
    read_by_why = overlay_inputs(image_transform(side)(shown)[None], heat)[0]
    assert torch.equal(read_by_why[:3], learnt_from[:3])
