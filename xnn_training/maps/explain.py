"""``xnaming explain``: significant X-features and their Excitation Backprop maps, as a bundle.

Data flow per batch of images (docs/maps.md, "The explain stage"):

1. the DNN up to the map layer, once per image (``SplitModel.lower``);
2. from that activation, the rest of the DNN (features, logits) and the xNN (X-features,
   scores), without autograd (``SplitModel.upper``);
3. the significant X-features of each image's explained class
   (:func:`xnn_training.maps.significant.significant_features`);
4. Excitation Backprop from each significant X-feature down to the cached activation, for all
   images of a batch explained by the same class at once, through
   ``nn.Sequential(nn.Identity(), upper, encoder of the class)`` with the identity as map layer;
5. each map's embedding (:mod:`xnn_training.maps.embed`): the embedding layers' outputs, tapped
   from the forward pass of step 1, pooled under the map's hot spot;
6. the image, raw maps, embeddings and overlays written with
   :class:`xnn_training.bundle.io.BundleWriter`; when the bundle is finished the embeddings are
   gathered into ``embeddings.npz`` (:mod:`xnn_training.bundle.embeddings`).

The model is split at the map layer with ``torch.fx`` (the graph torchvision's
``create_feature_extractor`` traces), so the expensive layers below the map layer run once per
image whatever the number of maps. The bundle's format is docs/formats.md.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, fx, nn
from torch.utils.data import DataLoader, Dataset
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names
from tqdm import tqdm

from xnn_training.bundle.embeddings import embeddings_entry, write_embeddings
from xnn_training.bundle.io import ActivationMap, BundleWriter, ExplainedImage, read_table
from xnn_training.data.datasets import SPLITS, ImageDataset, open_dataset
from xnn_training.defaults import SIGNIFICANT_SHARE
from xnn_training.devices import loader_options, resolve_device, strict_float32
from xnn_training.maps.embed import LayerTaps, default_embedding_layers, embed_maps
from xnn_training.maps.excitation_backprop import ExcitationBackprop
from xnn_training.maps.hot_spot import map_geometry
from xnn_training.maps.overlay import overlay
from xnn_training.maps.shards import Group, Rank, ShardError, launched_rank, run_workers, shard
from xnn_training.maps.significant import significant_features
from xnn_training.nets.models import MAP_LAYERS
from xnn_training.training.runs import WEIGHTS, XNNRun, load_dnn_run, load_xnn_run, relative, sha256
from xnn_training.training.table_one import table_one

__all__ = [
    "DISPLAY_SIZE",
    "Explainer",
    "SplitModel",
    "default_map_layer",
    "explain",
    "part_points",
    "x_feature_maps",
]

DISPLAY_SIZE = 360
"""Side in pixels of the images and overlays written for annotators: the width Label Studio's
per-map view shows (label_config ``per_map_config(image_px=360)``); board thumbnails scale it
down in the browser."""

EXPLAIN_MODES = ("true", "predicted")
CPU_BATCH_SIZE = 16
GPU_BATCH_SIZE = 64
"""Default images per batch: on a GPU, enough to fill it below the map layer (VGG16 at 224 px:
about 1 GB of activations); on the CPU, small enough to keep a batch's memory low."""


# --------------------------------------------------------------------------------------------
# The model split at the map layer


def default_map_layer(arch: str, model: nn.Module) -> str:
    """The default map layer of an architecture: VGG16 pool4 ``features.23``, ResNet
    ``layer3``, toycnn ``features.10``; for other models with a ``features`` stack of max
    poolings (VGG, AlexNet), the last-but-one max pooling.

    Raises
    ------
    ValueError
        When the architecture has no default: the message asks for ``--layer``.
    """
    if arch in MAP_LAYERS:
        return MAP_LAYERS[arch]
    if arch.startswith(("resnet", "resnext", "wide_resnet")):
        return "layer3"
    pools = [name for name, m in model.named_modules() if isinstance(m, nn.MaxPool2d)]
    if len(pools) >= 2:
        return pools[-2]
    raise ValueError(f"layer: {arch} has no default map layer; name one with --layer")


def _check_layer(model: nn.Module, layer: str) -> None:
    names = [name for name, _ in model.named_modules() if name]
    if layer not in names:
        close = difflib.get_close_matches(layer, names, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"layer: {layer!r} is not a module of the DNN.{hint} Valid names: {', '.join(names)}"
        )


def _node_named(graph: fx.Graph, name: str) -> fx.Node:
    return next(node for node in graph.nodes if node.name == name)


def _set_output(graph: fx.Graph, value: object) -> None:
    for node in list(graph.nodes):
        if node.op == "output":
            graph.erase_node(node)
    graph.output(value)


def _pruned(root: fx.GraphModule, graph: fx.Graph) -> fx.GraphModule:
    """``graph`` as a module of ``root``'s submodules, without dead nodes or unused modules."""
    module = fx.GraphModule(root, graph)
    module.graph.eliminate_dead_code()
    module.delete_all_unused_submodules()
    module.recompile()
    return module


class SplitModel(nn.Module):
    """A DNN split at its map layer: ``lower`` (images -> map-layer activation) and ``upper``
    (activation -> ``{"features", "logits"}``), both ``torch.fx`` graph modules sharing the
    DNN's parameters; ``features`` is ``upper`` returning the flattened features alone, the
    part of the network Excitation Backprop goes through above the map layer.

    Parameters
    ----------
    model
        The DNN (not changed; the graphs reference its modules).
    map_layer
        A module name (``features.23``, ``layer3``): the activation's layer.
    feature_layer
        The xNN's feature layer (a graph node name, as in the DNN run's config).

    Raises
    ------
    ValueError
        An unknown layer (the valid names are listed), or a map layer that is not below the
        feature layer.
    """

    def __init__(self, model: nn.Module, map_layer: str, feature_layer: str) -> None:
        super().__init__()
        _check_layer(model, map_layer)
        logits_node = get_graph_node_names(model)[1][-1]
        traced = create_feature_extractor(
            model, {map_layer: "map", feature_layer: "features", logits_node: "logits"}
        ).eval()
        returned = next(n for n in traced.graph.nodes if n.op == "output").args[0]
        names = {key: node.name for key, node in returned.items()}
        if len(set(names.values())) < 3:
            raise ValueError(
                f"layer: map layer {map_layer!r} is the feature layer or the output; choose a "
                "convolutional or pooling layer below the feature layer"
            )
        order = {node.name: i for i, node in enumerate(traced.graph.nodes)}
        if order[names["map"]] > order[names["features"]]:
            raise ValueError(
                f"layer: map layer {map_layer!r} comes after the feature layer "
                f"{feature_layer!r}; choose a convolutional or pooling layer below it"
            )
        self.map_layer = map_layer

        below = copy.deepcopy(traced.graph)
        _set_output(below, _node_named(below, names["map"]))
        self.lower = _pruned(traced, below)

        def upper_graph(flatten_features_only: bool) -> fx.Graph:
            graph = copy.deepcopy(traced.graph)
            cut = _node_named(graph, names["map"])
            inputs = [node for node in graph.nodes if node.op == "placeholder"]
            with graph.inserting_before(inputs[0]):
                activation = graph.placeholder("activation")
            cut.replace_all_uses_with(activation)
            features = _node_named(graph, names["features"])
            if flatten_features_only:
                with graph.inserting_after(features):
                    flat = graph.call_function(torch.flatten, (features, 1))
                _set_output(graph, flat)
            else:
                logits = _node_named(graph, names["logits"])
                _set_output(graph, {"features": features, "logits": logits})
            graph.owning_module = traced  # the purity check of dead-code elimination needs it
            graph.eliminate_dead_code()
            for node in inputs:
                if node.users:
                    raise ValueError(
                        f"layer: {map_layer!r} is not a cut of the network: layers above it also "
                        "read the input; choose a layer every path passes through (a VGG "
                        "pooling layer, a ResNet stage)"
                    )
                graph.erase_node(node)
            graph.lint()
            return graph

        self.upper = _pruned(traced, upper_graph(False))
        self.features = _pruned(traced, upper_graph(True))

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """``{"map", "features", "logits"}`` of a batch of images, in one pass."""
        activation = self.lower(images)
        out = self.upper(activation.clone())  # a clone: in-place ops above must not touch it
        return {**out, "map": activation, "features": torch.flatten(out["features"], 1)}


class _ClassEncoder(nn.Module):
    """The xNN encoders of all classes; ``forward`` uses the one selected by ``select``.

    One module for all classes lets one :class:`ExcitationBackprop` keep ``W+`` of the DNN's
    layers above the map layer once, for every class.
    """

    def __init__(self, encoders: Sequence[nn.Module]) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(encoders)
        self.selected = 0

    def select(self, c: int) -> None:
        self.selected = c

    def forward(self, features: Tensor) -> Tensor:
        return self.encoders[self.selected](features)


def x_feature_maps(
    run: XNNRun, images: Tensor, category: int, x_features: Sequence[int], map_layer: str
) -> Tensor:
    """Excitation Backprop maps of chosen X-features of one class on every image of a batch.

    ``xnaming explain`` maps each image's significant X-features; this maps the ones asked for,
    whatever their share (the correction finds where a rejected X-feature looks on the training
    images).

    Parameters
    ----------
    run
        The xNN run with its DNN (on the device of ``images``).
    images
        A batch (N, 3, H, W), normalised as the data sets give them.
    category
        The xNN class index whose X-features are mapped.
    x_features
        Their indices (K of them).
    map_layer
        The map layer, as the bundle's manifest names it.

    Returns
    -------
    Tensor
        (N, K, H, W): the maps upsampled (bilinear) to the images' size, as ``explain`` does.
    """
    split = SplitModel(run.dnn.model, map_layer, run.dnn.feature_layer).eval()
    upper = nn.Sequential(nn.Identity(), split.features, run.xnn.encoder_for_class(category))
    engine = ExcitationBackprop(upper.to(images.device).eval(), "0")
    with torch.no_grad():
        activation = split.lower(images)
    targets = [(i, k) for i in range(len(images)) for k in x_features]
    if not targets:
        return images.new_zeros((len(images), 0, *images.shape[-2:]))
    layer_maps = engine(activation, targets).layer_maps
    heat = F.interpolate(
        layer_maps[:, None], size=images.shape[-2:], mode="bilinear", align_corners=False
    )[:, 0]
    return heat.reshape(len(images), len(x_features), *images.shape[-2:])


# --------------------------------------------------------------------------------------------
# Explaining batches


@dataclass
class _Batch:
    """What one batch gives, on the CPU: per image its explained xNN class (-1: not
    explained), logits, xNN scores, and its significant X-features with their maps."""

    explained: Tensor  # (B,) xNN class index, -1 where the xNN does not explain that class
    logits: Tensor  # (B, n_dnn_classes)
    scores: Tensor  # (B, C)
    significant: list[list[tuple[int, float, float, int]]]  # per image: (k, contrib, share, rank)
    layer_maps: list[list[np.ndarray]]  # per image, in the order of ``significant``
    maps: list[list[np.ndarray]]  # the same at the input's size (bilinear)
    embeddings: list[list[np.ndarray | None]]  # the same order; None without embedding layers
    geometry: list[list[list[float]]]  # the same order: each map's MAP_GEOMETRY (hot_spot)


_CPU = torch.device("cpu")


class Explainer:
    """DNN + xNN split at the map layer, on ``device``: one forward below it per image,
    which also taps the embedding layers (none: no embeddings).

    Called on a batch of images (with their labels, and ``mode`` ``"true"`` or
    ``"predicted"``: which class to explain), it returns each image's logits, xNN scores and
    significant X-features with their maps (``explain`` and ``why`` share it)."""

    def __init__(
        self,
        run: XNNRun,
        map_layer: str,
        threshold: float,
        contrastive: bool,
        device: torch.device = _CPU,
        embedding_layers: Sequence[str] = (),
    ) -> None:
        self.run = run
        self.threshold = threshold
        self.device = device
        run.dnn.model.to(device)
        run.xnn.to(device)
        self.split = SplitModel(run.dnn.model, map_layer, run.dnn.feature_layer).eval()
        self.embedding_layers = tuple(embedding_layers)
        self.taps = (
            LayerTaps(run.dnn.model, map_layer, self.embedding_layers).eval()
            if self.embedding_layers
            else None
        )
        self.columns = torch.tensor(run.class_indices)
        self.encoders = _ClassEncoder(
            [run.xnn.encoder_for_class(c) for c in range(len(run.classes))]
        )
        explained_model = nn.Sequential(nn.Identity(), self.split.features, self.encoders).eval()
        self.engine = ExcitationBackprop(explained_model, "0", contrastive=contrastive)
        self.head = run.xnn.head_weight.detach().cpu()  # (C, k)

    def __call__(
        self,
        images: Tensor,
        labels: Tensor,
        mode: str,
        parts: Tensor | None = None,
        part_masks: Tensor | None = None,
    ) -> _Batch:
        images = images.to(self.device, non_blocking=True)
        with torch.no_grad():
            if self.taps is None:
                activation, tapped = self.split.lower(images), {}
            else:
                activation, tapped = self.taps(images)
            out = self.split.upper(activation.clone())
            predicted = self.run.xnn(torch.flatten(out["features"], 1))
        # The selection is cheap and runs on the CPU; the maps stay on the device until the end.
        logits = out["logits"].cpu()
        x_features, scores = predicted["x_features"].cpu(), predicted["scores"].cpu()
        dnn_class = labels.cpu() if mode == "true" else logits.argmax(1)
        # DNN class index -> xNN class index (-1: the xNN does not explain it)
        to_xnn = torch.full((logits.shape[1],), -1, dtype=torch.long)
        to_xnn[self.columns] = torch.arange(len(self.columns))
        explained = to_xnn[dnn_class]
        significant: list[list] = [[] for _ in range(len(images))]
        owners: list[int] = []  # the image of each map, in the order the maps are computed
        layer_maps: list[Tensor] = []
        for c in explained.unique().tolist():
            if c < 0:
                continue
            rows = torch.nonzero(explained == c).flatten()
            terms = x_features[rows, c] * self.head[c]
            chosen = significant_features(terms, self.threshold)
            for i, k, value, share, rank in zip(
                chosen.image, chosen.feature, chosen.contribution, chosen.share, chosen.rank,
                strict=True,
            ):  # fmt: skip
                significant[int(rows[i])].append((int(k), float(value), float(share), int(rank)))
            if not len(chosen):
                continue
            self.encoders.select(c)
            targets = torch.as_tensor(np.stack([chosen.image, chosen.feature], axis=1))
            layer_maps.append(self.engine(activation[rows.to(self.device)], targets).layer_maps)
            owners += [int(rows[i]) for i in chosen.image]
        per_image_layer: list[list] = [[] for _ in range(len(images))]
        per_image: list[list] = [[] for _ in range(len(images))]
        per_image_embedding: list[list] = [[] for _ in range(len(images))]
        per_image_geometry: list[list] = [[] for _ in range(len(images))]
        if layer_maps:
            stacked = torch.cat(layer_maps)
            heat = F.interpolate(
                stacked[:, None], size=images.shape[-2:], mode="bilinear", align_corners=False
            )[:, 0]
            embeddings: list = [None] * len(owners)
            if self.taps is not None:
                embeddings = list(
                    embed_maps(
                        tapped, activation, heat, torch.tensor(owners),
                        layers=self.embedding_layers, parts=parts, part_masks=part_masks,
                    ).cpu().numpy()
                )  # fmt: skip
            geometry = map_geometry(heat).tolist()  # measured once, here: the bundle keeps it
            for owner, layer_map, image_map, embedding, measured in zip(
                owners, stacked.cpu().numpy(), heat.cpu().numpy(), embeddings, geometry,
                strict=True,
            ):  # fmt: skip
                per_image_layer[owner].append(layer_map)
                per_image[owner].append(image_map)
                per_image_embedding[owner].append(embedding)
                per_image_geometry[owner].append(measured)
        return _Batch(
            explained, logits, scores, significant, per_image_layer, per_image,
            per_image_embedding, per_image_geometry,
        )  # fmt: skip


class _Items(Dataset):
    """The data set's images as the network and as annotators see them, with their index.

    In DataLoader workers on a GPU, so decoding and resizing run beside the GPU's work.
    """

    def __init__(self, dataset: ImageDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, object]:
        item = self.dataset[index]
        size = tuple(item["image"].shape[-2:])
        shown = display_image(self.dataset.samples[index].path, size)
        entry = {
            "image": item["image"],
            "label": item["label"],
            "index": index,
            "display": np.array(shown),  # a copy: writable, as torch wants
        }
        if self.dataset.located_parts:
            entry["parts"] = part_points(self.dataset, index)
            if self.dataset.has_part_masks:
                entry["part_mask"] = part_cover(self.dataset, index, size)
        return entry


def part_points(dataset: ImageDataset, index: int) -> Tensor:
    """(P, 2): where image ``index`` shows each of ``dataset.located_parts``, as (x, y)
    fractions of its width and height; NaN for a part it does not show (embed_maps' input)."""
    located = dataset.part_locations(index)
    where = [located.get(name, (float("nan"), float("nan"))) for name in dataset.located_parts]
    return torch.tensor(where, dtype=torch.float32).reshape(-1, 2)


def part_cover(dataset: ImageDataset, index: int, size: tuple[int, int]) -> Tensor:
    """(H, W) at the network's input ``size``: which of ``dataset.located_parts`` covers each
    pixel of image ``index`` (its position in that tuple), P (their count) where none does;
    embed_maps' ``part_masks``. The mask is resized as the image is, nearest label."""
    mask = Image.fromarray(dataset.part_mask(index)).resize(
        (size[1], size[0]), Image.Resampling.NEAREST
    )
    index_of = np.full(256, len(dataset.located_parts), dtype=np.int64)
    for label, name in dataset.part_names.items():
        if name in dataset.located_parts:
            index_of[label] = dataset.located_parts.index(name)
    return torch.from_numpy(index_of[np.asarray(mask)])


def _explained_images(
    batch: _Batch, items: dict[str, Tensor], dataset: ImageDataset, explainer: Explainer
) -> list[ExplainedImage]:
    """The rows of one batch: what the bundle gets for each explained image of it.

    Images whose class the xNN does not explain are left out.
    """
    run = explainer.run
    mixed = batch.logits.clone()
    mixed[:, explainer.columns] = batch.scores
    explained = []
    for row, index in enumerate(items["index"].tolist()):
        c = int(batch.explained[row])
        if c < 0:
            continue
        sample = dataset.samples[index]
        shown = Image.fromarray(items["display"][row].numpy())
        per_map = zip(
            batch.significant[row], batch.layer_maps[row], batch.maps[row], batch.embeddings[row],
            batch.geometry[row], strict=True,
        )  # fmt: skip
        activations = [
            ActivationMap(
                k, value, share, rank, heat, overlay(shown, layer_map), embedding, geometry
            )
            for (k, value, share, rank), layer_map, heat, embedding, geometry in per_map
        ]
        explained.append(
            ExplainedImage(
                image_id=sample.image_id,
                category=run.classes[c],
                true_category=dataset.classes[sample.label],
                prediction=dataset.classes[int(batch.logits[row].argmax())],
                score=float(batch.scores[row, c]),
                image=shown,
                activations=activations,
                extra={
                    "xnn_prediction": dataset.classes[int(mixed[row].argmax())],
                    "dnn_logit": float(batch.logits[row, explainer.columns[c]]),
                },
            )
        )
    return explained


def display_image(path: Path, size: tuple[int, int]) -> Image.Image:
    """The image as the network saw it (resized to a square, no crop), at display size."""
    with Image.open(path) as handle:
        image = handle.convert("RGB").resize((size[1], size[0]), Image.Resampling.BICUBIC)
    return image.resize((DISPLAY_SIZE, DISPLAY_SIZE), Image.Resampling.BICUBIC)


# --------------------------------------------------------------------------------------------
# The command


@dataclass(frozen=True)
class _Job:
    """The settings of one explain run: plain values, the same in every process."""

    dnn_run: Path
    xnn_run: Path
    data: Path
    out: Path
    split: str
    mode: str
    map_layer: str | None
    embedding_layers: tuple[str, ...] | None
    threshold: float
    contrastive: bool
    batch_size: int | None
    limit: int | None
    device: str
    loader_workers: int | None


@dataclass
class _Setup:
    """A job's runs and data loaded in one process (on the CPU), and the bundle's identity."""

    run: XNNRun
    layer: str
    embedding_layers: tuple[str, ...]
    dataset: ImageDataset
    indices: range
    identity: dict
    extra: dict

    @property
    def order(self) -> list[str]:
        return [sample.image_id for sample in self.dataset.samples]


def _set_up(job: _Job) -> _Setup:
    dnn = load_dnn_run(job.dnn_run)
    try:
        run = load_xnn_run(job.xnn_run, dnn)
    except ValueError as error:
        raise ValueError(f"runs do not belong together: {error}") from error
    layer = job.map_layer or default_map_layer(dnn.config["arch"], dnn.model)
    SplitModel(dnn.model, layer, dnn.feature_layer)  # refuse a bad layer before any waiting
    embedding_layers = job.embedding_layers
    if embedding_layers is None:
        embedding_layers = default_embedding_layers(dnn.model, layer)
    embeddings = None  # the manifest entry; part of the identity: a resume keeps the layers
    if embedding_layers:
        widths = LayerTaps(dnn.model, layer, embedding_layers).widths(dnn.image_size)
    dataset = open_dataset(job.data, job.split, dnn.classes, size=dnn.image_size)
    if embedding_layers:
        embeddings = embeddings_entry(widths, dataset.located_parts, masks=dataset.has_part_masks)
    identity = {
        "dnn_run": {"path": relative(dnn.path, job.out), "sha256": sha256(dnn.path / WEIGHTS)},
        "xnn_run": {"path": relative(run.path, job.out), "sha256": sha256(run.path / WEIGHTS)},
        "data": relative(job.data, job.out),
        "split": job.split,
        "layer": layer,
        "threshold": job.threshold,
        "explain": job.mode,
        "contrastive": job.contrastive,
        "embeddings": embeddings,
    }
    versions = {name: version(name) for name in ("xnaming", "torch", "torchvision", "numpy")}
    # An aligned xNN's concept per X-feature travels with its maps, for the report's RQ2.
    extra = {"versions": versions, "concepts": run.config.get("concepts", {}),
             "alignment": run.config.get("alignment")}  # fmt: skip
    size = len(dataset) if job.limit is None else min(job.limit, len(dataset))
    return _Setup(run, layer, tuple(embedding_layers), dataset, range(size), identity, extra)


def explain(
    dnn_run: Path,
    xnn_run: Path,
    data: Path,
    out: Path,
    *,
    split: str = "test",
    explain: str = "true",
    map_layer: str | None = None,
    embedding_layers: Sequence[str] | None = None,
    threshold: float = SIGNIFICANT_SHARE,
    contrastive: bool = False,
    batch_size: int | None = None,
    limit: int | None = None,
    device: str = "auto",
    workers: int = 1,
    loader_workers: int | None = None,
    threads: int | None = None,
    timeout: timedelta = timedelta(minutes=30),
) -> Path:
    """Write the map bundle of a data set split (docs/formats.md, "The map bundle").

    For every image (the first ``limit`` of the split, in data set order): the DNN's prediction,
    the xNN's score of the explained class, its significant X-features and, for each, an
    Excitation Backprop map (raw, npz) and an overlay PNG for annotators. Images with no
    significant X-feature are listed in ``images.csv`` all the same. An interrupted run resumes
    where it stopped when the same command is run again, with any number of processes.

    Under torchrun (``RANK`` and ``WORLD_SIZE`` set) each rank explains its share of the images
    into its part of the bundle and rank 0 merges the parts (:mod:`xnn_training.maps.shards`); the
    bundle is the one a single process writes, rows in data set order (docs/maps.md, "Several
    processes, GPUs and machines").

    Parameters
    ----------
    dnn_run, xnn_run
        The runs of ``xnaming train dnn`` and ``xnaming train xnn``; the xNN must have been
        trained on this DNN (the sha256 of its weights is compared).
    data
        The data set directory (toybirds, CUB-200-2011, ImageFolder).
    out
        The bundle directory: new, empty, or this same bundle to resume.
    split
        ``"test"`` or ``"train"``.
    explain
        ``"true"``: explain each image's true class (the paper's study); ``"predicted"``: the
        DNN's predicted class. Images whose class the xNN does not explain are skipped.
    map_layer
        Module name of the map layer; default :func:`default_map_layer`.
    embedding_layers
        Module names at or below the map layer whose activations under each map's hot spot
        embed it (``embeddings.npz``, the manifest's ``embeddings``); default
        :func:`xnn_training.maps.embed.default_embedding_layers`; empty: no embeddings.
    threshold
        Significant X-features cover this share of the positive score (0, 1].
    contrastive
        Contrastive Excitation Backprop.
    batch_size
        Images per forward pass; default 16 on the CPU, 64 on a GPU.
    limit
        Explain only the first ``limit`` images of the split.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (:func:`xnn_training.devices.
        resolve_device`; under torchrun, ``auto`` and ``cuda`` give each rank the GPU
        ``LOCAL_RANK % GPUs``). On a GPU the computation is IEEE float32 (TF32 off), so the
        maps equal the CPU's within float32 rounding.
    workers
        Processes on this machine (not under torchrun), each with its share, as torchrun's
        ranks would have; this process coordinates them.
    loader_workers
        DataLoader processes per rank or worker; default 0 on the CPU, 2 on a GPU.
    threads
        Torch CPU threads of each process; default: torch's (torchrun: 1 per rank), with
        ``workers``: this machine's cores divided among them.
    timeout
        How long a rank waits for the others (while rank 0 opens the bundle; at the end, for
        the slowest rank).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    ValueError
        Runs that do not belong together, an unknown layer (valid names listed), a bad option,
        a device this machine does not have.
    xnn_training.bundle.io.BundleError
        ``out`` holds something other than this bundle, or another run is writing it.
    xnn_training.maps.shards.ShardError
        A rank or worker failed or did not finish in time; every image finished is kept, and
        the same command (with any number of processes) completes the bundle.
    """
    _check_options(split, explain, threshold, batch_size, limit, workers, threads)
    rank = launched_rank()
    if workers > 1 and rank.sharded:
        raise ValueError(
            f"workers: --workers {workers} under torchrun, which already started "
            f"{rank.world_size} ranks; give torchrun --nproc-per-node instead"
        )
    resolve_device(device, local_rank=rank.local_rank)
    job = _Job(
        Path(dnn_run), Path(xnn_run), Path(data), Path(out), split, explain, map_layer,
        None if embedding_layers is None else tuple(embedding_layers), threshold, contrastive,
        batch_size, limit, device, loader_workers,
    )  # fmt: skip
    if workers > 1:
        return _explain_with_workers(job, workers, threads)
    setup = _set_up(job)
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        with Group(rank, timeout=timeout) as group:
            main = group.first(lambda: BundleWriter(job.out, setup.identity, setup.extra))
            try:
                if rank.sharded:
                    writer = BundleWriter(job.out, setup.identity, part=rank.part)
                else:
                    writer = main
                _explain_share(job, setup, writer, rank)
                group.wait_all(_LEFT_FOR_A_RERUN.format(out=job.out))
                if main is not None:
                    _finish(setup, main)
            finally:
                if main is not None:
                    main.close()
    finally:
        torch.set_num_threads(previous)
    return job.out


_LEFT_FOR_A_RERUN = (
    "Every image finished is kept in {out}; run the same command again, with any number of "
    "processes, to complete the bundle."
)


def _explain_with_workers(job: _Job, workers: int, threads: int | None) -> Path:
    """Let ``workers`` processes explain their shares; open and finish the bundle here.

    The workers start first and load the runs while this process checks them and opens the
    bundle (merging what an earlier run left); then they read the images still to explain.
    """
    cores = len(os.sched_getaffinity(0))
    per_worker = threads or max(1, cores // workers)
    opened: list[tuple[_Setup, BundleWriter]] = []

    def open_bundle() -> None:
        setup = _set_up(job)
        opened.append((setup, BundleWriter(job.out, setup.identity, setup.extra)))

    try:
        run_workers(_explain_worker, (workers, job, per_worker), workers, prepare=open_bundle)
        setup, main = opened[0]
        _finish(setup, main)
    except ShardError as error:
        if opened:
            setup, main = opened[0]
            main.merge(setup.order)  # what they finished, readable at once
        raise ShardError(f"{error}. {_LEFT_FOR_A_RERUN.format(out=job.out)}") from error
    finally:
        for _, main in opened:
            main.close()
    return job.out


def _explain_worker(index: int, go: Any, workers: int, job: _Job, threads: int) -> None:
    """One ``--workers`` process (started by :func:`xnn_training.maps.shards.run_workers`)."""
    torch.set_num_threads(threads)
    setup = _set_up(job)
    rank = Rank(index, workers, index)
    go.wait()  # the coordinator has opened the bundle: the images still to do are known
    _explain_share(job, setup, BundleWriter(job.out, setup.identity, part=rank.part), rank)


def _explain_share(job: _Job, setup: _Setup, writer: BundleWriter, rank: Rank) -> None:
    """Explain this rank's share of the images not in the bundle yet, into ``writer``."""
    device = resolve_device(job.device, local_rank=rank.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    size = job.batch_size or (GPU_BATCH_SIZE if device.type == "cuda" else CPU_BATCH_SIZE)
    samples = setup.dataset.samples
    todo = [i for i in setup.indices if samples[i].image_id not in writer.done]
    batches = shard([todo[start : start + size] for start in range(0, len(todo), size)], rank)
    explainer = Explainer(
        setup.run, setup.layer, job.threshold, job.contrastive, device, setup.embedding_layers
    )
    loader = DataLoader(
        _Items(setup.dataset), batch_sampler=batches, **loader_options(device, job.loader_workers)
    )
    if rank.sharded:
        bar = tqdm(
            total=sum(map(len, batches)), desc=f"explain {rank.rank + 1}/{rank.world_size}",
            unit="img", position=rank.local_rank,
        )  # fmt: skip
    else:
        finished = len(setup.indices) - len(todo)
        bar = tqdm(total=len(setup.indices), initial=finished, desc="explain", unit="img")
    with bar, strict_float32(device):
        for items in loader:
            batch = explainer(
                items["image"], items["label"], job.mode, items.get("parts"),
                items.get("part_mask"),
            )  # fmt: skip
            for explained in _explained_images(batch, items, setup.dataset, explainer):
                writer.add(explained)
            bar.update(len(items["index"]))


def _finish(setup: _Setup, main: BundleWriter) -> None:
    """Merge the parts in data set order, print and write the summary, finish the bundle."""
    order = setup.order
    finished = main.merge(order)
    skipped = sum(1 for i in setup.indices if order[i] not in finished)
    if skipped:
        print(
            f"explain: {skipped} images skipped: their class is not explained by {setup.run.path}"
        )
    images_csv = main.root / "images.csv"
    images = read_table(images_csv) if images_csv.exists() else None
    summary = table_one(images)
    write_embeddings(main.root)  # every row is in: gather the maps' embeddings, in order
    main.finish(summary)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def _check_options(
    split: str,
    mode: str,
    threshold: float,
    batch_size: int | None,
    limit: int | None,
    workers: int,
    threads: int | None,
) -> None:
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    if mode not in EXPLAIN_MODES:
        raise ValueError(f"explain: expected 'true' or 'predicted', got {mode!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold: expected a share in (0, 1], got {threshold!r}")
    for name, value in (("batch_size", batch_size), ("limit", limit), ("threads", threads)):
        if value is not None and value < 1:
            raise ValueError(f"{name}: expected at least 1, got {value!r}")
    if workers < 1:
        raise ValueError(f"workers: expected at least 1 process, got {workers!r}")
