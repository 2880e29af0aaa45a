"""Map embeddings, computed from the forward pass ``xnaming explain`` already makes.

For every significant activation, what its map shows (docs/maps.md, "Map embeddings"):

- **appearance**: for each embedding layer (below the map layer), the layer's activations
  averaged over the map's hot spot (the pixels at least :data:`~xnn_training.maps.hot_spot.HOT_SPOT`
  of the map's maximum: what lights up in the overlay the annotator sees), each pixel weighted
  by the map and taking the activations of the layer's cell it falls in;
- **geometry** (:data:`xnn_training.bundle.embeddings.GEOMETRY`, in that order): where the hot spot
  lies in the image and relative to the object, which is located from the map layer's
  activation energy (the channel norm above its mean, as SCDA localises birds in CUB-200), so
  no part masks or second pass are needed;
- **parts** (when the data set locates the object's parts: CUB-200's part locations, the
  centres of toybirds' part masks): the share of the hot spot's heat on each part, a pixel
  counting for the nearest located part within a radius, else for ``elsewhere``, at each of
  :data:`~xnn_training.bundle.embeddings.PART_RADII`. People name maps after the part they light up;
  these columns say which, in the same terms on every board, where looks change by species;
- **part masks** (when the data set has them: toybirds, a part segmentation): the share of the
  hot spot's heat on each part's mask, and off every part. A location is one point: a wing
  folded on the body has its centre near the body's, and the nearest-part cells cannot tell
  the two apart; the masks can.

:class:`LayerTaps` is the DNN up to the map layer returning the embedding layers' outputs too,
so explain's one forward pass below the map layer gives both; :func:`embed_maps` turns a batch's
outputs and maps into embeddings; :func:`default_embedding_layers` is the rule for which layers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torchvision.models.feature_extraction import create_feature_extractor

from xnn_training.bundle.embeddings import PART_RADII
from xnn_training.maps.hot_spot import (
    centre_and_spread,
    hot_area,
    hot_weights,
    part_shares,
    pixel_centres,
)

__all__ = ["LayerTaps", "default_embedding_layers", "embed_maps"]

_MAP = "map"
"""The key of the map layer's activation in :class:`LayerTaps`' output."""


def default_embedding_layers(model: nn.Module, map_layer: str) -> tuple[str, ...]:
    """The layers whose activations embed the maps, by default: two depths at the map layer.

    The rule (docs/maps.md, "Map embeddings"):

    - a map layer in a ``Sequential`` stack with max poolings (toycnn, VGG, AlexNet): the
      modules feeding the last two max poolings up to the map layer (a pooling map layer is the
      last of them; otherwise the map layer itself is the deeper one). toycnn at ``features.10``:
      ``features.4``, ``features.9``; VGG16 at pool4 (``features.23``): ``features.15``,
      ``features.22`` (relu3_3, relu4_3): a mid-level layer (colour, texture) and the parts the
      map layer pools;
    - a ResNet-like stage ``layerN``: the stage before it and the stage itself (``layer2``,
      ``layer3``);
    - any other map layer: the map layer alone.
    """
    modules = dict(model.named_modules())
    if map_layer not in modules:
        raise ValueError(f"layer: {map_layer!r} is not a module of the DNN")
    stage = map_layer.removeprefix("layer")
    if stage.isdigit() and modules.get(f"layer{int(stage) - 1}") is not None:
        return (f"layer{int(stage) - 1}", map_layer)
    parent, _, index = map_layer.rpartition(".")
    stack = modules.get(parent)
    if isinstance(stack, nn.Sequential) and index.isdigit() and int(index) > 0:
        children = list(stack.children())
        at = int(index)
        pools = [i for i in range(1, at + 1) if isinstance(children[i], nn.MaxPool2d)]
        if pools and pools[-1] == at:
            feeding = [i - 1 for i in pools[-2:]]
        else:
            feeding = [i - 1 for i in pools[-1:]] + [at]
        return tuple(f"{parent}.{i}" for i in feeding)
    return (map_layer,)


class LayerTaps(nn.Module):
    """The DNN from its input to the map layer, returning the map layer's activation and the
    outputs of ``layers`` (a ``torch.fx`` graph of the DNN's own modules, by torchvision's
    ``create_feature_extractor``: the same operations as explain's lower half, so the maps do
    not change when embeddings are made).

    Parameters
    ----------
    model
        The DNN (not changed).
    map_layer
        The map layer's module name.
    layers
        Module names at or below the map layer whose outputs are (B, C, h, w) maps.

    Raises
    ------
    ValueError
        No layers, an unknown layer, or one above the map layer.
    """

    def __init__(self, model: nn.Module, map_layer: str, layers: Sequence[str]) -> None:
        super().__init__()
        self.layers = tuple(layers)
        if not self.layers:
            raise ValueError("embedding layers: expected at least one layer")
        names = {name for name, _ in model.named_modules() if name}
        unknown = [layer for layer in self.layers if layer not in names]
        if unknown:
            raise ValueError(
                f"embedding layers: {unknown} are not modules of the DNN; valid names: "
                f"{', '.join(sorted(names))}"
            )
        nodes = {map_layer: _MAP, **{layer: layer for layer in self.layers if layer != map_layer}}
        self.graph_module = create_feature_extractor(model, nodes)
        order = {node.name: i for i, node in enumerate(self.graph_module.graph.nodes)}
        returned = next(n for n in self.graph_module.graph.nodes if n.op == "output").args[0]
        above = [
            layer
            for layer in self.layers
            if layer != map_layer and order[returned[layer].name] > order[returned[_MAP].name]
        ]
        if above:
            raise ValueError(
                f"embedding layers: {above} come after the map layer {map_layer!r}; choose "
                "layers at or below it (explain's forward pass stops there)"
            )
        self.map_layer = map_layer

    def forward(self, images: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The map layer's activation and each embedding layer's output, in one pass."""
        out = self.graph_module(images)
        tapped = {layer: out[_MAP if layer == self.map_layer else layer] for layer in self.layers}
        return out[_MAP], tapped

    def widths(self, image_size: int) -> dict[str, int]:
        """Each layer's channels, from one blank image (also checks that each output is a
        (B, C, h, w) map).

        Raises
        ------
        ValueError
            A layer whose output is not a map with two spatial dimensions.
        """
        device = next(self.graph_module.parameters()).device
        with torch.no_grad():
            _, outputs = self(torch.zeros(1, 3, image_size, image_size, device=device))
        flat = [layer for layer, out in outputs.items() if out.dim() != 4]
        if flat:
            raise ValueError(
                f"embedding layers: {flat} give no spatial map (their outputs are not "
                "(batch, channels, height, width)); choose convolutional or pooling layers"
            )
        return {layer: int(out.shape[1]) for layer, out in outputs.items()}


def _cells(size: int, cells: int, device: torch.device) -> Tensor:
    """(size, cells): 1 where pixel ``p`` lies in cell ``p * cells // size`` (the layer's grid
    stretched over the image)."""
    owner = torch.arange(size, device=device) * cells // size
    return (owner[:, None] == torch.arange(cells, device=device)[None]).to(torch.float32)


def _object_frames(activation: Tensor) -> Tensor:
    """Per image (cx, cy, sx, sy, size) of the object seen at the map layer: the cells whose
    activation norm is above the image's mean, weighted by how much (all cells when none is)."""
    energy = activation.detach().float().square().sum(dim=1).sqrt()  # (B, h, w); norm() is slow
    above = (energy - energy.mean(dim=(1, 2), keepdim=True)).clamp(min=0)
    flat = above.sum(dim=(1, 2)) <= 0
    weights = torch.where(flat[:, None, None], torch.ones_like(above), above)
    weights = weights / weights.sum(dim=(1, 2), keepdim=True)
    h, w = energy.shape[1:]
    ys, xs = pixel_centres(h, energy.device)[:, None], pixel_centres(w, energy.device)[None, :]
    cx, cy = (weights * xs).sum(dim=(1, 2)), (weights * ys).sum(dim=(1, 2))
    floor = 0.5 / max(h, w)  # half a cell: a one-cell object still has a size
    sx = (weights * (xs - cx[:, None, None]) ** 2).sum(dim=(1, 2)).sqrt().clamp(min=floor)
    sy = (weights * (ys - cy[:, None, None]) ** 2).sum(dim=(1, 2)).sqrt().clamp(min=floor)
    size = torch.where(flat, 1.0, (above > 0).float().mean(dim=(1, 2)))
    return torch.stack([cx, cy, sx, sy, size], dim=1)


def embed_maps(
    features: Mapping[str, Tensor],
    activation: Tensor,
    heat: Tensor,
    owners: Tensor,
    *,
    layers: Sequence[str],
    parts: Tensor | None = None,
    part_masks: Tensor | None = None,
) -> Tensor:
    """The embeddings of a batch's maps: each layer's appearance, then the geometry.

    Parameters
    ----------
    features
        Layer name -> its output for the batch of images, (B, C, h, w) (:class:`LayerTaps`).
    activation
        The map layer's output for the batch, (B, C, h, w): locates the object.
    heat
        The maps at the network's input size, (n, H, W); negative values count as 0.
    owners
        For each map, the index of its image in the batch, (n,).
    layers
        The layers, in the embedding's column order.
    parts
        Where each image's P located parts are, (B, P, 2) as (x, y) fractions of its width and
        height, NaN for a part the image does not show; ``None``: no part columns.
    part_masks
        Which of the P parts covers each pixel of each image, (B, H, W) integers at the maps'
        size, P where none does; needs ``parts``. ``None``: no mask columns.

    Returns
    -------
    torch.Tensor
        float32, on ``heat``'s device, (n, sum of the layers' channels + len(GEOMETRY)), and
        (P + 1) more columns per one of :data:`~xnn_training.bundle.embeddings.PART_RADII` with
        ``parts``, then P + 1 more with ``part_masks``. A map without positive values has the
        whole image as its hot spot.
    """
    if heat.dim() != 3 or owners.shape != heat.shape[:1]:
        raise ValueError(
            f"heat: expected (n, H, W) maps with one image index each, got {tuple(heat.shape)} "
            f"and {tuple(owners.shape)} indices"
        )
    if part_masks is not None and (parts is None or part_masks.shape[1:] != heat.shape[1:]):
        raise ValueError(
            f"part_masks: expected (B, H, W) masks of the maps' size {tuple(heat.shape[1:])} "
            f"beside the parts' locations, got {tuple(part_masks.shape)}"
        )
    device = heat.device
    n, height, width = heat.shape
    # A map without heat: its hot spot is every pixel (as hot_spot says), evenly.
    weights = hot_weights(heat, even_when_blank=True)
    # The maps grouped by image (one matrix product per image and layer), put back at the end.
    order = torch.argsort(owners.cpu(), stable=True)
    images, counts = torch.unique_consecutive(owners.cpu()[order], return_counts=True)
    images, counts, order = images.tolist(), counts.tolist(), order.to(device)
    columns = []
    for layer in layers:
        output = features[layer].detach().float()
        rows, cols = _cells(height, output.shape[2], device), _cells(width, output.shape[3], device)
        cells = torch.einsum("yi,nyx,xj->nij", rows, weights, cols).flatten(1)  # (n, h * w)
        pooled = torch.empty(n, output.shape[1], device=device)
        if n:
            grouped = cells[order].split(counts)
            pooled[order] = torch.cat(
                [m @ output[i].flatten(1).T for i, m in zip(images, grouped, strict=True)]
            )
        columns.append(pooled)
    hx, hy, spread = centre_and_spread(weights)
    area = hot_area(heat)
    owners = owners.to(device)
    cx, cy, sx, sy, size = _object_frames(activation)[owners].unbind(dim=1)
    dx, dy = (hx - cx) / sx, (hy - cy) / sy
    geometry = [hx, hy, area, spread, dx, dy, torch.hypot(dx, dy), size, area / size]
    columns.append(torch.stack(geometry, dim=1))
    if parts is not None:
        nearest, distance = _nearest_parts(parts.to(device), height, width)
        nearest, distance = nearest[owners], distance[owners]
        for radius in PART_RADII:  # the nearest part within a radius is the nearest, or none
            within = torch.where(distance <= radius, nearest, parts.shape[1])
            columns.append(part_shares(weights, within, parts.shape[1]))
        if part_masks is not None:
            covered = part_masks.to(device=device, dtype=torch.long)[owners]
            columns.append(part_shares(weights, covered, parts.shape[1]))
    return torch.cat(columns, dim=1)


def _nearest_parts(parts: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """(B, H, W) twice: per pixel of each image, the index of the nearest located part (P when
    the image shows none) and its distance (infinite then)."""
    parts = parts.to(torch.float32)
    count, device = parts.shape[1], parts.device
    xs, ys = pixel_centres(width, device), pixel_centres(height, device)
    best = torch.full((parts.shape[0], height, width), float("inf"), device=device)
    nearest = torch.full(best.shape, count, dtype=torch.long, device=device)
    for p in range(count):  # one part at a time: (B, H, W) memory, not (B, P, H, W)
        x, y = parts[:, p, 0, None, None], parts[:, p, 1, None, None]
        distance = torch.hypot(xs[None, None, :] - x, ys[None, :, None] - y)
        closer = distance < best  # NaN (absent) is never closer
        best = torch.where(closer, distance, best)
        nearest = torch.where(closer, p, nearest)
    return nearest, best
