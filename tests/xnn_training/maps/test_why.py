"""``xnaming why``: any image explained, one line per file it cannot read, the concepts of an
aligned xNN, the summary over a folder, and nothing readable refused."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from PIL import Image

from xnaming.cli import main
from xnn_training.maps.why import OTHER, WHY_COLUMNS


@pytest.fixture
def inputs(toybirds_run, tmp_path):
    """A folder of test images (one in a sub-folder), a broken file, a tiny image, a CMYK one."""
    folder = tmp_path / "images"
    table = pd.read_csv(toybirds_run.data / "images.csv").query("split == 'test'").head(5)
    for k, path in enumerate(table["image_path"]):
        target = folder / ("deeper" if k == 0 else "") / f"bird{k}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(toybirds_run.data / path, target)
    Image.open(folder / "bird1.png").convert("CMYK").save(folder / "cmyk.jpg")
    (folder / "broken.png").write_text("not an image")
    Image.new("RGB", (4, 4)).save(folder / "tiny.png")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    return folder


def test_why_explains_every_readable_image_and_skips_the_rest(toybirds_run, inputs, tmp_path,
                                                               capsys):  # fmt: skip
    out = tmp_path / "why"
    code = main(["why", "--dnn", str(toybirds_run.dnn), "--xnn", str(toybirds_run.xnn),
                 str(inputs), str(tmp_path / "typo"), "--out", str(out),
                 "--device", "cpu"])  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    skipped = [line for line in err.splitlines() if line.startswith("xnaming why:")]
    assert len(skipped) == 3  # the typo, the broken file, the tiny image: one line each
    assert any("typo" in line and "no such file" in line for line in skipped)
    assert any("tiny.png" in line and "too small" in line for line in skipped)
    table = pd.read_csv(out / "why.csv", keep_default_na=False)
    assert list(table.columns) == WHY_COLUMNS
    assert table["image_path"].nunique() == 6  # five birds (one in a sub-folder) and the CMYK
    explained = table[table["overlay_path"] != ""]
    assert len(explained)
    assert all((out / p).is_file() for p in explained["overlay_path"])
    assert (explained["concept"] == "").all()  # an xNN trained without namings names nothing
    shares = explained["share"].astype(float).groupby(explained["image_path"]).sum()
    assert (shares >= 0.9 - 1e-6).all()  # the significant X-features cover 90% of the score
    summary = pd.read_csv(out / "summary.csv")
    assert summary.groupby("predicted")["images"].sum().sum() == 6
    assert (summary["explanation"] == "unlabeled").all()
    assert len(pd.read_csv(out / "skipped.csv")) == 3
    page = (out / "why.html").read_text()
    assert "carries no concept names" in page
    assert all(p in page for p in explained["overlay_path"])


@pytest.mark.slow
def test_why_speaks_the_concepts_of_an_aligned_xnn(toybirds_run, inputs, tmp_path):
    from xnn_training.maps.explain import explain
    from xnn_training.training.align import align_xnn

    bundle = explain(toybirds_run.dnn, toybirds_run.xnn, toybirds_run.data, tmp_path / "fb",
                     split="feedback", embedding_layers=())  # fmt: skip
    activations = pd.read_csv(bundle / "activations.csv", dtype=str)
    pd.DataFrame({
        "annotator": "ann", "category": activations["category"],
        "activation_id": activations["activation_id"], "concept": "wing", "status": "named",
    }).to_csv(tmp_path / "namings.csv", index=False)  # fmt: skip
    aligned = align_xnn(toybirds_run.dnn, tmp_path / "aligned", namings=tmp_path / "namings.csv",
                        bundle=bundle, epochs=2, device="cpu")  # fmt: skip
    out = tmp_path / "why"
    assert main(["why", "--dnn", str(toybirds_run.dnn), "--xnn", str(aligned), str(inputs),
                 "--out", str(out), "--device", "cpu"]) == 0  # fmt: skip
    table = pd.read_csv(out / "why.csv", keep_default_na=False)
    concepts = json.loads((aligned / "config.json").read_text())["concepts"]
    for row in table[table["overlay_path"] != ""].itertuples():
        carried = concepts.get(row.predicted, {})
        assert row.concept == carried.get(str(row.x_feature), OTHER)
    assert "carries no concept names" not in (out / "why.html").read_text()


def test_nothing_readable_is_refused(toybirds_run, tmp_path, capsys):
    (tmp_path / "broken.png").write_text("not an image")
    code = main(["why", "--dnn", str(toybirds_run.dnn), "--xnn", str(toybirds_run.xnn),
                 str(tmp_path / "broken.png"), "--out", str(tmp_path / "out")])  # fmt: skip
    assert code == 3
    assert "no image to explain" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
