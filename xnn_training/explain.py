"""``xnaming explain``: significant X-features and their Excitation Backprop maps, as a bundle.

Data flow per batch of images (docs/maps.md, "The explain stage"):

1. the DNN up to the map layer, once per image (``SplitModel.lower``);
2. from that activation, the rest of the DNN (features, logits) and the xNN (X-features,
   scores), without autograd (``SplitModel.upper``);
3. the significant X-features of each image's explained class
   (:func:`xnn_training.significant.significant_features`);
4. Excitation Backprop from each significant X-feature down to the cached activation, for all
   images of a batch explained by the same class at once, through
   ``nn.Sequential(nn.Identity(), upper, encoder of the class)`` with the identity as map layer;
5. the image, raw maps and overlays written with :class:`xnn_training.bundle.BundleWriter`.

The model is split at the map layer with ``torch.fx`` (the graph torchvision's
``create_feature_extractor`` traces), so the expensive layers below the map layer run once per
image whatever the number of maps. The bundle's format is docs/formats.md.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, fx, nn
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names
from tqdm import tqdm

from xnn_training.bundle import ActivationMap, BundleWriter, ExplainedImage, read_table
from xnn_training.datasets import ImageDataset, open_dataset
from xnn_training.defaults import SIGNIFICANT_SHARE
from xnn_training.excitation_backprop import ExcitationBackprop
from xnn_training.models import MAP_LAYERS
from xnn_training.overlay import overlay
from xnn_training.runs import WEIGHTS, XNNRun, load_dnn_run, load_xnn_run, relative, sha256
from xnn_training.significant import significant_features
from xnn_training.table_one import table_one

__all__ = [
    "DISPLAY_SIZE",
    "SplitModel",
    "default_map_layer",
    "explain",
]

DISPLAY_SIZE = 360
"""Side in pixels of the images and overlays written for annotators: the width Label Studio's
per-map view shows (label_config ``per_map_config(image_px=360)``); board thumbnails scale it
down in the browser."""

EXPLAIN_MODES = ("true", "predicted")


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


# --------------------------------------------------------------------------------------------
# Explaining batches


@dataclass
class _Batch:
    """What one batch gives: per image its explained xNN class (-1: not explained), logits,
    xNN scores, and its significant X-features with their maps at the map layer."""

    explained: Tensor  # (B,) xNN class index, -1 where the xNN does not explain that class
    logits: Tensor  # (B, n_dnn_classes)
    scores: Tensor  # (B, C)
    significant: list[list[tuple[int, float, float, int]]]  # per image: (k, contrib, share, rank)
    layer_maps: list[list[np.ndarray]]  # per image, in the order of ``significant``


class _Explainer:
    """DNN + xNN split at the map layer: one forward below it per image."""

    def __init__(self, run: XNNRun, map_layer: str, threshold: float, contrastive: bool) -> None:
        self.run = run
        self.threshold = threshold
        self.split = SplitModel(run.dnn.model, map_layer, run.dnn.feature_layer).eval()
        self.columns = torch.tensor(run.class_indices)
        self.encoders = _ClassEncoder(
            [run.xnn.encoder_for_class(c) for c in range(len(run.classes))]
        )
        explained_model = nn.Sequential(nn.Identity(), self.split.features, self.encoders).eval()
        self.engine = ExcitationBackprop(explained_model, "0", contrastive=contrastive)
        self.head = run.xnn.head_weight.detach()  # (C, k)

    def __call__(self, images: Tensor, labels: Tensor, mode: str) -> _Batch:
        with torch.no_grad():
            activation = self.split.lower(images)
            out = self.split.upper(activation.clone())
            logits = out["logits"]
            predicted = self.run.xnn(torch.flatten(out["features"], 1))
        x_features, scores = predicted["x_features"], predicted["scores"]
        dnn_class = labels if mode == "true" else logits.argmax(1)
        # DNN class index -> xNN class index (-1: the xNN does not explain it)
        to_xnn = torch.full((logits.shape[1],), -1, dtype=torch.long)
        to_xnn[self.columns] = torch.arange(len(self.columns))
        explained = to_xnn[dnn_class]
        significant: list[list] = [[] for _ in range(len(images))]
        layer_maps: list[list] = [[] for _ in range(len(images))]
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
            maps = self.engine(activation[rows], targets).layer_maps.numpy()
            for i, heat in zip(chosen.image, maps, strict=True):
                layer_maps[int(rows[i])].append(heat)
        return _Batch(explained, logits, scores, significant, layer_maps)


# --------------------------------------------------------------------------------------------
# The command


def explain(
    dnn_run: Path,
    xnn_run: Path,
    data: Path,
    out: Path,
    *,
    split: str = "test",
    explain: str = "true",
    map_layer: str | None = None,
    threshold: float = SIGNIFICANT_SHARE,
    contrastive: bool = False,
    batch_size: int = 16,
    limit: int | None = None,
) -> Path:
    """Write the map bundle of a data set split (docs/formats.md, "The map bundle").

    For every image (the first ``limit`` of the split, in data set order): the DNN's prediction,
    the xNN's score of the explained class, its significant X-features and, for each, an
    Excitation Backprop map (raw, npz) and an overlay PNG for annotators. Images with no
    significant X-feature are listed in ``images.csv`` all the same. An interrupted run resumes
    where it stopped when the same command is run again.

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
    threshold
        Significant X-features cover this share of the positive score (0, 1].
    contrastive
        Contrastive Excitation Backprop.
    batch_size
        Images per forward pass.
    limit
        Explain only the first ``limit`` images of the split.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    ValueError
        Runs that do not belong together, an unknown layer (valid names listed), a bad option.
    xnn_training.bundle.BundleError
        ``out`` holds something other than this bundle.
    """
    _check_options(split, explain, threshold, batch_size, limit)
    dnn = load_dnn_run(dnn_run)
    try:
        run = load_xnn_run(xnn_run, dnn)
    except ValueError as error:
        raise ValueError(f"runs do not belong together: {error}") from error
    layer = map_layer or default_map_layer(dnn.config["arch"], dnn.model)
    explainer = _Explainer(run, layer, threshold, contrastive)
    dataset = open_dataset(data, split, dnn.classes, size=dnn.image_size)

    out = Path(out)
    identity = {
        "dnn_run": {"path": relative(dnn.path, out), "sha256": sha256(dnn.path / WEIGHTS)},
        "xnn_run": {"path": relative(run.path, out), "sha256": sha256(run.path / WEIGHTS)},
        "data": relative(data, out),
        "split": split,
        "layer": layer,
        "threshold": threshold,
        "explain": explain,
        "contrastive": contrastive,
    }
    versions = {name: version(name) for name in ("xnaming", "torch", "torchvision", "numpy")}
    writer = BundleWriter(out, identity, {"versions": versions})

    indices = range(len(dataset)) if limit is None else range(min(limit, len(dataset)))
    todo = [i for i in indices if dataset.samples[i].image_id not in writer.done]
    skipped = 0
    finished = len(indices) - len(todo)
    with tqdm(total=len(indices), initial=finished, desc="explain", unit="img") as bar:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            skipped += _explain_batch(dataset, chunk, explainer, explain, writer)
            bar.update(len(chunk))
    if skipped:
        print(f"explain: {skipped} images skipped: their class is not explained by {run.path}")
    images = read_table(out / "images.csv") if (out / "images.csv").exists() else None
    summary = table_one(images)
    writer.finish(summary)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return out


def _explain_batch(
    dataset: ImageDataset,
    chunk: list[int],
    explainer: _Explainer,
    mode: str,
    writer: BundleWriter,
) -> int:
    """Explain and write the images ``chunk`` of ``dataset``; return how many were skipped."""
    items = [dataset[i] for i in chunk]
    images = torch.stack([item["image"] for item in items])
    labels = torch.tensor([item["label"] for item in items])
    batch = explainer(images, labels, mode)
    run = explainer.run
    mixed = batch.logits.clone()
    mixed[:, explainer.columns] = batch.scores
    size = images.shape[-2:]
    skipped = 0
    for row, index in enumerate(chunk):
        c = int(batch.explained[row])
        if c < 0:
            skipped += 1
            continue
        sample = dataset.samples[index]
        shown = _display_image(sample.path, size)
        activations = []
        for (k, value, share, rank), layer_map in zip(
            batch.significant[row], batch.layer_maps[row], strict=True
        ):
            heat = F.interpolate(
                torch.from_numpy(layer_map)[None, None], size=size, mode="bilinear",
                align_corners=False,
            )[0, 0].numpy()  # fmt: skip
            activations.append(
                ActivationMap(k, value, share, rank, heat, overlay(shown, layer_map))
            )
        writer.add(
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
    return skipped


def _display_image(path: Path, size: tuple[int, int]) -> Image.Image:
    """The image as the network saw it (resized to a square, no crop), at display size."""
    with Image.open(path) as handle:
        image = handle.convert("RGB").resize((size[1], size[0]), Image.Resampling.BICUBIC)
    return image.resize((DISPLAY_SIZE, DISPLAY_SIZE), Image.Resampling.BICUBIC)


def _check_options(
    split: str, mode: str, threshold: float, batch_size: int, limit: int | None
) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    if mode not in EXPLAIN_MODES:
        raise ValueError(f"explain: expected 'true' or 'predicted', got {mode!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold: expected a share in (0, 1], got {threshold!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected at least 1, got {batch_size!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit: expected at least 1 image, got {limit!r}")
