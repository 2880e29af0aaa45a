"""Map embeddings: the fast batched pooling against a slow map-by-map reference, the bundle's
embeddings file (order, determinism, resume) and its checks."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision import models

from xnaming.cli import main
from xnaming.errors import BAD_INPUT
from xnn_training import open_dataset
from xnn_training.bundle.embeddings import (
    EMBEDDINGS_FILE,
    GEOMETRY,
    PART_RADII,
    EmbeddingError,
    bundle_fingerprint,
    read_embeddings,
)
from xnn_training.bundle.io import read_bundle
from xnn_training.maps.embed import LayerTaps, default_embedding_layers, embed_maps
from xnn_training.maps.explain import default_map_layer, explain
from xnn_training.maps.hot_spot import hot_spot
from xnn_training.nets.models import ToyCNN
from xnn_training.training.runs import load_dnn_run

# --------------------------------------------------------------------------------------------
# The slow reference: one map at a time, float64, plain loops over pixels and cells


def reference_embedding(
    features: list[np.ndarray], activation: np.ndarray, heat: np.ndarray
) -> np.ndarray:
    """The embedding of one map as docs/maps.md defines it.

    ``features``: each layer's output for the map's image (C, h, w); ``activation``: the map
    layer's (C, h, w); ``heat``: the map at the input's size (H, W).
    """
    heat = np.clip(np.asarray(heat, np.float64), 0, None)
    height, width = heat.shape
    hot = hot_spot(heat)
    weight = np.where(hot, heat, 0.0) if heat.max() > 0 else hot.astype(np.float64)
    total = weight.sum()
    columns: list[float] = []
    for output in features:
        channels, h, w = output.shape
        pooled = np.zeros(channels)
        for y in range(height):
            for x in range(width):
                pooled += weight[y, x] * output[:, y * h // height, x * w // width]
        columns += list(pooled / total)
    hx = hy = 0.0
    for y in range(height):
        for x in range(width):
            hx += weight[y, x] * (x + 0.5) / width / total
            hy += weight[y, x] * (y + 0.5) / height / total
    spread = 0.0
    for y in range(height):
        for x in range(width):
            spread += (
                weight[y, x]
                / total
                * (((x + 0.5) / width - hx) ** 2 + ((y + 0.5) / height - hy) ** 2)
            )
    area = hot.sum() / hot.size
    # The object: map-layer cells whose activation norm is above the mean, by how much.
    _, h, w = activation.shape
    energy = np.array(
        [[np.sqrt((activation[:, i, j] ** 2).sum()) for j in range(w)] for i in range(h)]
    )
    above = np.maximum(energy - energy.mean(), 0.0)
    flat = above.sum() <= 0
    cell_weight = np.ones_like(above) / above.size if flat else above / above.sum()
    cx = sum(cell_weight[i, j] * (j + 0.5) / w for i in range(h) for j in range(w))
    cy = sum(cell_weight[i, j] * (i + 0.5) / h for i in range(h) for j in range(w))
    vx = sum(cell_weight[i, j] * ((j + 0.5) / w - cx) ** 2 for i in range(h) for j in range(w))
    vy = sum(cell_weight[i, j] * ((i + 0.5) / h - cy) ** 2 for i in range(h) for j in range(w))
    floor = 0.5 / max(h, w)
    sx, sy = max(np.sqrt(vx), floor), max(np.sqrt(vy), floor)
    size = 1.0 if flat else (above > 0).sum() / above.size
    dx, dy = (hx - cx) / sx, (hy - cy) / sy
    geometry = [hx, hy, area, np.sqrt(spread), dx, dy, np.hypot(dx, dy), size, area / size]
    assert len(geometry) == len(GEOMETRY)
    return np.array(columns + geometry)


def test_batched_embeddings_equal_the_reference_on_random_maps():
    """Odd sizes (the layer's grid does not divide the image), several maps per image, maps
    with several equal peaks, an all-zero map and a negative one."""
    rng = np.random.default_rng(3)
    features = {"a": rng.random((3, 4, 5, 7)), "b": rng.normal(size=(3, 6, 3, 2))}
    activation = rng.random((3, 5, 4, 4)) ** 3
    activation[2] = 1.0  # a flat activation: the whole image is the object
    heat = rng.random((6, 10, 13)) ** 4
    heat[1, 2:4, 3:5] = heat[1].max()  # a plateau at the maximum
    heat[3] = 0.0
    heat[4] = -heat[4]
    owners = np.array([0, 0, 1, 2, 2, 2])
    got = embed_maps(
        {k: torch.tensor(v, dtype=torch.float32) for k, v in features.items()},
        torch.tensor(activation, dtype=torch.float32),
        torch.tensor(heat, dtype=torch.float32),
        torch.tensor(owners),
        layers=["b", "a"],
    )
    assert got.dtype == torch.float32
    for i, owner in enumerate(owners):
        want = reference_embedding(
            [features["b"][owner], features["a"][owner]], activation[owner], heat[i]
        )
        np.testing.assert_allclose(got[i].numpy(), want, rtol=1e-5, atol=1e-6)


def reference_part_shares(heat: np.ndarray, parts: np.ndarray, radius: float) -> np.ndarray:
    """Each part's share of one map's hot-spot heat (docs/maps.md), pixel by pixel: a pixel
    counts for the nearest part within ``radius`` (the first of equally near ones), else for
    elsewhere. ``parts``: (P, 2) fractions, NaN for a part the image does not show."""
    heat = np.clip(np.asarray(heat, np.float64), 0, None)
    height, width = heat.shape
    hot = hot_spot(heat)
    weight = np.where(hot, heat, 0.0) if heat.max() > 0 else hot.astype(np.float64)
    shares = np.zeros(len(parts) + 1)
    for y in range(height):
        for x in range(width):
            owner, best = len(parts), np.inf
            for p, (px, py) in enumerate(parts):
                if np.isnan(px):
                    continue
                distance = np.hypot((x + 0.5) / width - px, (y + 0.5) / height - py)
                if distance <= radius and distance < best:
                    owner, best = p, distance
            shares[owner] += weight[y, x]
    return shares / weight.sum()


def reference_mask_shares(heat: np.ndarray, cover: np.ndarray, count: int) -> np.ndarray:
    """The hot spot's heat on each of ``count`` parts' masks, then off all of them:
    ``cover`` (H, W) holds the part index of each pixel, ``count`` where no part covers it."""
    heat = np.clip(np.asarray(heat, np.float64), 0, None)
    hot = hot_spot(heat)
    weight = np.where(hot, heat, 0.0) if heat.max() > 0 else hot.astype(np.float64)
    shares = np.zeros(count + 1)
    for y in range(heat.shape[0]):
        for x in range(heat.shape[1]):
            shares[cover[y, x]] += weight[y, x]
    return shares / weight.sum()


def test_mask_shares_equal_the_reference():
    """The masks' block follows the radii's: which part covers the hot spot, not which is near."""
    rng = np.random.default_rng(6)
    heat = rng.random((4, 10, 8)) ** 6
    owners = np.array([0, 1, 1, 0])
    parts = rng.random((2, 3, 2))
    cover = rng.integers(0, 4, size=(2, 10, 8))  # 3: no part
    cover[1] = 3  # image 1: no part anywhere
    got = embed_maps(
        {},
        torch.ones(2, 2, 3, 3),
        torch.tensor(heat, dtype=torch.float32),
        torch.tensor(owners),
        layers=[],
        parts=torch.tensor(parts, dtype=torch.float32),
        part_masks=torch.tensor(cover),
    )
    assert got.shape == (4, len(GEOMETRY) + (3 + 1) * (len(PART_RADII) + 1))
    for i, owner in enumerate(owners):
        want = reference_mask_shares(heat[i], cover[owner], 3)
        np.testing.assert_allclose(got[i, -4:].numpy(), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[[1, 2], -1].numpy(), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="part_masks"):  # masks of another size
        embed_maps(
            {}, torch.ones(2, 2, 3, 3), torch.tensor(heat, dtype=torch.float32),
            torch.tensor(owners), layers=[], parts=torch.tensor(parts, dtype=torch.float32),
            part_masks=torch.tensor(cover[:, :5]),
        )  # fmt: skip


def test_part_shares_equal_the_reference():
    """Parts absent from an image (NaN), an image that shows none, maps on and off the parts."""
    rng = np.random.default_rng(5)
    heat = rng.random((5, 12, 9)) ** 6
    heat[2] = 0.0  # no heat: the whole image is the hot spot, evenly
    owners = np.array([0, 0, 1, 2, 2])
    parts = rng.random((3, 4, 2))
    parts[0, 1] = np.nan  # image 0 does not show part 1
    parts[2] = np.nan  # image 2 shows no part: all its heat is elsewhere
    got = embed_maps(
        {},
        torch.ones(3, 2, 3, 3),
        torch.tensor(heat, dtype=torch.float32),
        torch.tensor(owners),
        layers=[],
        parts=torch.tensor(parts, dtype=torch.float32),
    )
    assert got.shape == (5, len(GEOMETRY) + (4 + 1) * len(PART_RADII))
    for i, owner in enumerate(owners):
        want = [reference_part_shares(heat[i], parts[owner], radius) for radius in PART_RADII]
        got_parts = got[i, len(GEOMETRY) :].numpy()
        np.testing.assert_allclose(got_parts, np.concatenate(want), rtol=1e-5, atol=1e-6)
    widest, tightest = got[:, len(GEOMETRY) : len(GEOMETRY) + 5], got[:, -5:]
    assert (tightest[:, -1] >= widest[:, -1] - 1e-6).all()  # tighter: more heat elsewhere
    assert (tightest[:3, -1] > widest[:3, -1] + 0.05).any()  # ... and it tells them apart
    np.testing.assert_allclose(got[3:, -1].numpy(), 1.0, rtol=1e-6)  # image 2: elsewhere


def test_embed_maps_refuses_maps_without_their_images():
    with pytest.raises(ValueError, match="one image index each"):
        embed_maps({}, torch.zeros(1, 1, 2, 2), torch.zeros(3, 4, 4), torch.zeros(2), layers=[])


# --------------------------------------------------------------------------------------------
# Which layers


@pytest.mark.parametrize(
    ("arch", "layers", "widths"),
    [
        ("toycnn", ("features.4", "features.9"), (64, 96)),
        ("vgg16", ("features.15", "features.22"), (256, 512)),
        ("vgg11_bn", ("features.13", "features.20"), (256, 512)),
        ("resnet18", ("layer2", "layer3"), (128, 256)),
        ("alexnet", ("features.1", "features.4"), (64, 192)),
    ],
)
def test_default_embedding_layers_per_architecture(arch, layers, widths):
    model = ToyCNN(3) if arch == "toycnn" else models.get_model(arch, weights=None)
    map_layer = default_map_layer(arch, model)
    assert default_embedding_layers(model, map_layer) == layers
    taps = LayerTaps(model.eval(), map_layer, layers)
    assert tuple(taps.widths(64)) == layers
    assert tuple(taps.widths(64).values()) == widths


def test_default_embedding_layers_other_map_layers():
    model = ToyCNN(3)
    # not a pooling: the map layer itself and what feeds the pooling below it
    assert default_embedding_layers(model, "features.8") == ("features.4", "features.8")
    # no stack of poolings around it: the map layer alone
    assert default_embedding_layers(model, "avgpool") == ("avgpool",)
    resnet = models.resnet18()
    assert default_embedding_layers(resnet, "layer1") == ("layer1",)


def test_layer_taps_refuse_bad_layers():
    model = ToyCNN(3).eval()
    with pytest.raises(ValueError, match=r"'features\.99'.*valid names"):
        LayerTaps(model, "features.10", ["features.99"])
    with pytest.raises(ValueError, match=r"features\.12.*after the map layer"):
        LayerTaps(model, "features.10", ["features.4", "features.12"])
    with pytest.raises(ValueError, match="at least one"):
        LayerTaps(model, "features.10", [])


def test_layer_taps_give_the_lower_half_exactly():
    model = ToyCNN(3).eval()
    images = torch.rand(2, 3, 32, 32)
    activation, tapped = LayerTaps(model, "features.10", ["features.4", "features.10"])(images)
    with torch.no_grad():
        lower = model.features[:11](images)
        torch.testing.assert_close(activation, lower, rtol=0, atol=0)
        torch.testing.assert_close(tapped["features.4"], model.features[:5](images))
    assert tapped["features.10"] is activation


# --------------------------------------------------------------------------------------------
# The bundle's embeddings


@pytest.fixture(scope="module")
def runs(toybirds_run):
    return toybirds_run.data, toybirds_run.dnn, toybirds_run.xnn


@pytest.fixture(scope="module")
def bundles(runs, tmp_path_factory):
    """The same run explained with embeddings (twice, at two batch sizes) and without."""
    data, dnn, xnn = runs
    root = tmp_path_factory.mktemp("embedded")
    return {
        "a": explain(dnn, xnn, data, root / "a", batch_size=4, threads=1),
        "b": explain(dnn, xnn, data, root / "b", batch_size=4, threads=1),
        "odd": explain(dnn, xnn, data, root / "odd", batch_size=5, threads=1),
        "none": explain(
            dnn, xnn, data, root / "none", embedding_layers=(), batch_size=4, threads=1
        ),
    }


@pytest.mark.slow
def test_bundle_embeddings_equal_the_reference_map_by_map(runs, bundles):
    """Each row of embeddings.npz is its activation's (activations.csv order), and equals the
    reference computed in float64 from a float64 copy of the DNN, one image at a time, on the
    bundle's own map."""
    data, dnn_path, _ = runs
    bundle = read_bundle(bundles["a"])
    embeddings = read_embeddings(bundle)
    assert embeddings.activation_ids == tuple(bundle.activations["activation_id"])
    assert embeddings.layers == {"features.4": 64, "features.9": 96}
    assert bundle.manifest["embeddings"]["layers"] == embeddings.layers
    dnn = load_dnn_run(dnn_path)
    model = copy.deepcopy(dnn.model).double().eval()
    dataset = open_dataset(data, "test", dnn.classes, size=dnn.image_size)
    # toybirds locates its parts (the centres of their masks): one column each, then elsewhere,
    # at each radius, the widest first, and last the shares of the masks themselves
    assert embeddings.parts == dataset.located_parts
    assert list(embeddings.parts) == bundle.manifest["embeddings"]["parts"]
    assert embeddings.radii == PART_RADII == tuple(bundle.manifest["embeddings"]["part_radii"])
    assert embeddings.masks
    assert bundle.manifest["embeddings"]["part_masks"] is True
    prefixes = ["part:", *(f"part@{radius:g}:" for radius in PART_RADII[1:]), "part@mask:"]
    located = [f"{pre}{name}" for pre in prefixes for name in [*embeddings.parts, "elsewhere"]]
    assert embeddings.columns[-len(GEOMETRY) - len(located) :] == (*GEOMETRY, *located)
    assert embeddings.where == len(GEOMETRY) + len(located)
    position = {sample.image_id: i for i, sample in enumerate(dataset.samples)}
    for row, activation in enumerate(bundle.activations.itertuples()):
        index = position[activation.image_id]
        image = dataset[index]["image"][None].double()
        with torch.no_grad():
            outputs = [model.features[: i + 1](image)[0].numpy() for i in (4, 9, 10)]
        heat = np.load(bundle.root / activation.map_path)["map"]
        mask = dataset.part_mask(index)
        parts = []
        for name in embeddings.parts:  # the centre of the part's mask, NaN when not shown
            label = next(k for k, v in dataset.part_names.items() if v == name)
            ys, xs = np.nonzero(mask == label)
            centre = ((xs.mean() + 0.5) / mask.shape[1], (ys.mean() + 0.5) / mask.shape[0])
            parts.append(centre if len(xs) else (np.nan, np.nan))
        labels = Image.fromarray(mask).resize(heat.shape[::-1], Image.Resampling.NEAREST)
        cover = np.full(np.asarray(labels).shape, len(embeddings.parts))
        for p, name in enumerate(embeddings.parts):
            label = next(k for k, v in dataset.part_names.items() if v == name)
            cover[np.asarray(labels) == label] = p
        want = np.concatenate(
            [
                reference_embedding(outputs[:2], outputs[2], heat),
                *(reference_part_shares(heat, np.array(parts), r) for r in PART_RADII),
                reference_mask_shares(heat, cover, len(embeddings.parts)),
            ]
        )
        np.testing.assert_allclose(embeddings.values[row], want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(
        embeddings.rows([embeddings.activation_ids[2]])[0], embeddings.values[2]
    )


@pytest.mark.slow
def test_embeddings_are_deterministic_and_do_not_change_the_maps(bundles):
    a, b = (bundles[k] / EMBEDDINGS_FILE for k in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()  # the same command, the same file
    other_batches = read_embeddings(bundles["odd"])
    np.testing.assert_allclose(
        other_batches.values, read_embeddings(bundles["a"]).values, rtol=1e-5, atol=1e-6
    )
    with_, without = read_bundle(bundles["a"]), read_bundle(bundles["none"])
    assert with_.activations.equals(without.activations)
    for path in with_.activations["map_path"]:
        np.testing.assert_array_equal(
            np.load(with_.root / path)["map"], np.load(without.root / path)["map"]
        )
    assert with_.manifest["files"][EMBEDDINGS_FILE]


@pytest.mark.slow
def test_a_bundle_without_embeddings_still_reads(bundles, tmp_path):
    bundle = read_bundle(bundles["none"])
    assert bundle.manifest["embeddings"] is None
    assert not (bundles["none"] / EMBEDDINGS_FILE).exists()
    assert read_embeddings(bundle) is None
    old = _copy(bundles["none"], tmp_path)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["embeddings"]  # as written before embeddings existed
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert read_embeddings(old) is None
    assert read_embeddings(read_bundle(old)) is None


@pytest.mark.slow
def test_a_bundle_with_one_part_radius_still_reads(bundles, tmp_path):
    """A bundle made when the part shares had one radius (``part_radius``; publish and the
    backend take its columns as they come) reads with just those columns."""
    old = _copy(bundles["a"], tmp_path)
    manifest = json.loads((old / "manifest.json").read_text())
    entry = manifest["embeddings"]
    del entry["part_radii"], entry["part_masks"]
    entry["part_radius"] = PART_RADII[0]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with np.load(old / EMBEDDINGS_FILE) as arrays:
        content = dict(arrays)
    kept = len(content["columns"]) - (len(entry["parts"]) + 1) * len(PART_RADII)
    with (old / EMBEDDINGS_FILE).open("wb") as file:
        content["embedding"] = content["embedding"][:, :kept]
        content["columns"] = content["columns"][:kept]
        content["fingerprint"] = np.array(bundle_fingerprint(manifest))
        np.savez_compressed(file, **content)
    embeddings = read_embeddings(old)
    assert embeddings.radii == (PART_RADII[0],)
    assert not embeddings.masks
    assert embeddings.columns[-1] == "part:elsewhere"
    assert embeddings.where == len(GEOMETRY) + len(entry["parts"]) + 1
    np.testing.assert_array_equal(embeddings.values, read_embeddings(bundles["a"]).values[:, :kept])


@pytest.mark.slow
def test_an_interrupted_run_resumes_with_the_same_embeddings(
    runs, bundles, tmp_path, record_bundle_adds
):
    data, dnn, xnn = runs
    record_bundle_adds(interrupt_after=3)
    with pytest.raises(KeyboardInterrupt):
        explain(dnn, xnn, data, tmp_path / "b", batch_size=2, threads=1)
    assert not (tmp_path / "b" / EMBEDDINGS_FILE).exists()
    record_bundle_adds()
    explain(dnn, xnn, data, tmp_path / "b", batch_size=2, threads=1)
    resumed, straight = read_embeddings(tmp_path / "b"), read_embeddings(bundles["a"])
    assert resumed.activation_ids == straight.activation_ids
    np.testing.assert_allclose(resumed.values, straight.values, rtol=1e-5, atol=1e-6)
    # A resume with other embedding layers would mix two kinds of rows: refused.
    with pytest.raises(ValueError, match="embeddings"):
        explain(dnn, xnn, data, tmp_path / "b", embedding_layers=["features.9"])


def _copy(bundle, tmp_path, name="copy"):
    return shutil.copytree(bundle, tmp_path / name)


def _assert_refused(bundle, *patterns):
    with pytest.raises(EmbeddingError) as caught:
        read_embeddings(bundle)
    message = str(caught.value)
    assert str(bundle / EMBEDDINGS_FILE) in message
    assert "re-run `xnaming explain`" in message
    for pattern in patterns:
        assert pattern in message
    return message


@pytest.mark.slow
def test_a_truncated_file_is_refused(bundles, tmp_path):
    bundle = _copy(bundles["a"], tmp_path)
    content = (bundle / EMBEDDINGS_FILE).read_bytes()
    (bundle / EMBEDDINGS_FILE).write_bytes(content[: len(content) // 2])
    _assert_refused(bundle, "truncated or damaged")
    (bundle / EMBEDDINGS_FILE).write_bytes(b"")
    _assert_refused(bundle, "truncated or damaged")


@pytest.mark.slow
def test_a_file_of_another_bundle_is_refused(runs, bundles, tmp_path):
    data, dnn, xnn = runs
    other = explain(dnn, xnn, data, tmp_path / "other", contrastive=True, batch_size=4)
    # Same images and X-features, so the same ids; other maps (contrastive).
    assert (
        read_bundle(other)
        .activations["activation_id"]
        .equals(read_bundle(bundles["a"]).activations["activation_id"])
    )
    bundle = _copy(bundles["a"], tmp_path)
    shutil.copy(other / EMBEDDINGS_FILE, bundle / EMBEDDINGS_FILE)
    _assert_refused(bundle, "another bundle")


@pytest.mark.slow
def test_a_file_whose_ids_do_not_match_is_refused(bundles, tmp_path):
    bundle = _copy(bundles["a"], tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    with np.load(bundle / EMBEDDINGS_FILE) as arrays:
        content = dict(arrays)
    ids = content["activation_id"]

    def write(**changed):
        with (bundle / EMBEDDINGS_FILE).open("wb") as file:
            np.savez_compressed(file, **{**content, **changed})

    write(activation_id=ids[::-1].copy())
    _assert_refused(bundle, "does not match activations.csv", "another order")
    write(activation_id=ids[:-1], embedding=content["embedding"][:-1])
    _assert_refused(bundle, "does not match activations.csv", f"missing: ['{ids[-1]}']")
    renamed = ids.copy()
    renamed[0] = "ghost:x0"
    write(activation_id=renamed)
    _assert_refused(bundle, "not in activations.csv: ['ghost:x0']")
    write(embedding=content["embedding"][:, :-1])
    _assert_refused(bundle, "columns")
    broken = content["embedding"].copy()
    broken[1, 3] = np.nan
    write(embedding=broken)
    _assert_refused(bundle, "not finite")
    write()
    assert bundle_fingerprint(manifest) == str(content["fingerprint"])
    assert read_embeddings(bundle) is not None  # the untouched content reads again


@pytest.mark.slow
def test_missing_or_unannounced_files_are_refused(bundles, tmp_path):
    bundle = _copy(bundles["a"], tmp_path)
    (bundle / EMBEDDINGS_FILE).unlink()
    _assert_refused(bundle, "is missing")
    stray = _copy(bundles["none"], tmp_path, "stray")
    shutil.copy(bundles["a"] / EMBEDDINGS_FILE, stray / EMBEDDINGS_FILE)
    _assert_refused(stray, "no embeddings entry")


@pytest.mark.slow
def test_cli_embedding_layers(runs, tmp_path, capsys):
    data, dnn, xnn = runs
    args = ["explain", "--dnn", str(dnn), "--xnn", str(xnn), "--data", str(data), "--limit", "2"]
    assert main([*args, "--out", str(tmp_path / "a"), "--embedding-layers", "features.7"]) == 0
    assert "embeddings.npz" in capsys.readouterr().out
    assert read_embeddings(tmp_path / "a").layers == {"features.7": 96}
    assert main([*args, "--out", str(tmp_path / "b"), "--embedding-layers", "none"]) == 0
    assert "embeddings.npz" not in capsys.readouterr().out
    assert read_embeddings(tmp_path / "b") is None
    code = main([*args, "--out", str(tmp_path / "c"), "--embedding-layers", "classifier.0"])
    assert code == BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "classifier.0" in err
    assert not (tmp_path / "c").exists()


def test_toy_model_unchanged_by_taps():
    model = ToyCNN(3)
    before = copy.deepcopy(model.state_dict())
    LayerTaps(model, "features.10", ["features.4"]).widths(32)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks for m in model.modules() if isinstance(m, nn.Module))
