"""Each map's geometry: measured once when the bundle is written, read back from it; a bundle
made before it was written has it measured on read, once, with one warning."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from tests.ls_backend.bundle_factory import make_bundle
from xnn_training.bundle.embeddings import GEOMETRY, read_embeddings
from xnn_training.bundle.io import GEOMETRY_TABLE, MANIFEST, bundle_geometry, read_bundle
from xnn_training.maps.embed import embed_maps
from xnn_training.maps.hot_spot import MAP_GEOMETRY, describe_map, map_geometry


def strip_geometry(bundle):
    """Make ``bundle`` look as a bundle written before the geometry was kept in it."""
    (bundle / GEOMETRY_TABLE).unlink()
    manifest = json.loads((bundle / MANIFEST).read_text())
    del manifest["files"][GEOMETRY_TABLE]
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    return bundle


def test_the_writer_keeps_each_maps_geometry(tmp_path):
    bundle = read_bundle(make_bundle(tmp_path / "bundle"))
    assert GEOMETRY_TABLE in bundle.manifest["files"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a new bundle: nothing to say
        geometry = bundle_geometry(bundle)
    for index, row in bundle.activations.head(5).iterrows():
        with np.load(bundle.root / row["map_path"]) as arrays:
            measured = describe_map(arrays["map"])
        kept = geometry.loc[index].to_dict()
        assert kept == pytest.approx(measured, rel=1e-5, abs=1e-6)
    assert list(geometry.columns) == list(MAP_GEOMETRY)
    assert geometry.index.equals(bundle.activations.index)


def test_a_bundle_without_geometry_is_measured_once_with_one_warning(tmp_path):
    new = read_bundle(make_bundle(tmp_path / "new"))
    old = read_bundle(strip_geometry(make_bundle(tmp_path / "old")))
    assert not (old.root / GEOMETRY_TABLE).exists()
    lines: list[str] = []
    measured = bundle_geometry(old, warn=lines.append)
    assert bundle_geometry(old, warn=lines.append) is measured  # once per read bundle
    (line,) = lines
    assert line.startswith("warning: ")
    assert str(old.root) in line
    assert "re-run `xnaming explain`" in line
    np.testing.assert_allclose(measured.to_numpy(), bundle_geometry(new).to_numpy(), rtol=1e-5)
    with pytest.warns(UserWarning, match="geometry"):
        bundle_geometry(read_bundle(old.root))


def test_the_embedding_and_the_geometry_measure_the_hot_spot_alike():
    rng = np.random.default_rng(2)
    heat = torch.tensor(rng.random((5, 12, 9)) ** 4, dtype=torch.float32)
    embedded = embed_maps({}, torch.ones(1, 2, 3, 3), heat, torch.zeros(5, dtype=torch.long),
                          layers=[])  # fmt: skip
    geometry = map_geometry(heat)
    for name in ("hot_x", "hot_y", "hot_area", "hot_spread"):
        np.testing.assert_allclose(
            embedded[:, GEOMETRY.index(name)].numpy(),
            geometry[:, MAP_GEOMETRY.index(name)].numpy(),
            rtol=1e-5,
        )


def test_the_embeddings_file_still_matches_a_bundle_with_geometry(tmp_path):
    bundle = make_bundle(tmp_path / "bundle", embeddings=True)
    assert read_embeddings(bundle) is not None
