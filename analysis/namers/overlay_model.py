"""A small CNN that reads a map over its image, as an annotator reads the overlay.

An annotator names a map after the part its heat lies on, and only when the heat lies on one
part; which part, and how much of the heat it holds, is in the pixels: the image and the map
together. Summaries of the map (the classifier's features averaged under the hot spot, where
the hot spot lies) lose how the heat meets the part's edges. So the model reads both at pixel
level: two convolution paths, one over the image and one over the map (its heat and its hot
spot), added and pooled twice, once weighted by the hot spot (what lies under it) and once over
the whole image (its context), then joined with the map's descriptors (share, rank, geometry).

One trunk learns from every annotator's namings of the same maps, with a head per annotator
(multi-task learning: each person's judgement of a map tells the trunk something about the
map; each head keeps that person's words and threshold). A map an annotator did not judge
teaches their head nothing. :data:`MEMBERS` nets from different seeds are averaged: a few hundred
named maps are little to learn from, and the average is steadier than any one net (measured in
docs/measurements.md). Training mirrors half the maps (a mirrored bird is the same bird);
reading each map mirrored as well cost a third of ``why``'s time for no gain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from xnn_training.maps.hot_spot import hot_weights

__all__ = [
    "EPOCHS", "MEMBERS", "NAMER_SIDE", "VERSION", "OverlayModel", "fit_overlay_model",
    "overlay_inputs",
]  # fmt: skip

VERSION = 1
"""Bumped when the net, its inputs or its training change: a saved model of another version is
not loaded (:meth:`OverlayModel.from_state`)."""

MEMBERS = 3
"""Nets averaged (each from its own seed)."""
EPOCHS = 60
"""Passes over the named maps per net."""
NAMER_SIDE = 96
"""The largest side the model reads the image and map at; smaller inputs are read as they are."""
_UNJUDGED = -100  # cross_entropy's ignore_index: the annotator did not judge this map
_SHIFT = 4  # pixels of random shift in training, at 64 pixels a side (scaled with the side)


def overlay_inputs(images: Tensor, heat: Tensor) -> Tensor:
    """The model's input: each image with its map, (n, 5, s, s).

    Parameters
    ----------
    images
        (n, 3, H, W): the images as the classifier reads them (normalised).
    heat
        (n, H, W): the maps at the images' size; negative values count as 0.

    Returns
    -------
    torch.Tensor
        float32 on the CPU: the three image channels, the heat over its maximum and the hot
        spot's weights over their maximum, at side ``min(H, NAMER_SIDE)``.
    """
    if images.dim() != 4 or images.shape[1] != 3 or heat.shape != (len(images), *images.shape[2:]):
        raise ValueError(
            f"images, heat: expected (n, 3, H, W) and (n, H, W), got {tuple(images.shape)} and "
            f"{tuple(heat.shape)}"
        )
    images, heat = images.detach().float().cpu(), heat.detach().float().cpu().clamp(min=0)
    side = min(images.shape[-1], NAMER_SIDE)
    if images.shape[-2:] != (side, side):
        images = F.interpolate(images, size=(side, side), mode="bilinear", antialias=True)
        heat = F.interpolate(heat[:, None], size=(side, side), mode="area")[:, 0]
    weights = hot_weights(heat, even_when_blank=True)
    peak = heat.flatten(1).amax(dim=1).clamp(min=1e-30)[:, None, None]
    spot = weights / weights.flatten(1).amax(dim=1).clamp(min=1e-30)[:, None, None]
    return torch.cat([images, (heat / peak)[:, None], spot[:, None]], dim=1)


class _OverlayNet(nn.Module):
    """Image path + map path -> trunk -> hot-spot and whole-image pooling + descriptors -> heads."""

    def __init__(self, descriptors: int, classes: Sequence[int]) -> None:
        super().__init__()
        self.image = nn.Conv2d(3, 32, 3, padding=1)
        self.map = nn.Conv2d(2, 32, 3, padding=1)
        self.trunk = nn.Sequential(
            nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.joint = nn.Sequential(nn.Linear(128 + descriptors, 64), nn.ReLU(), nn.Dropout(0.3))
        self.heads = nn.ModuleList(nn.Linear(64, n) for n in classes)

    def forward(self, x: Tensor, descriptors: Tensor) -> list[Tensor]:
        x = x.contiguous(memory_format=torch.channels_last)  # faster convolutions on a CPU
        cells = self.trunk(self.image(x[:, :3]) + self.map(x[:, 3:]))
        spot = F.adaptive_avg_pool2d(x[:, 4:5], cells.shape[-2:])
        spot = spot / spot.sum(dim=(2, 3), keepdim=True).clamp(min=1e-8)
        pooled = torch.cat([(cells * spot).sum(dim=(2, 3)), cells.mean(dim=(2, 3))], dim=1)
        joint = self.joint(torch.cat([pooled, descriptors], dim=1))
        return [head(joint) for head in self.heads]


@dataclass(frozen=True)
class OverlayModel:
    """The averaged nets, whose words each head speaks, and the descriptors' scaling."""

    nets: tuple[_OverlayNet, ...]
    vocabularies: Mapping[str, tuple[str, ...]]
    """Head (annotator) -> its verdicts in output order; ``""`` (first) is unnamed or discarded."""
    centre: Tensor
    scale: Tensor

    def probabilities(self, who: str, inputs: Tensor, descriptors: np.ndarray) -> np.ndarray:
        """(n, len(vocabularies[who])): each verdict's probability for each map.

        Parameters
        ----------
        who
            The head: an annotator of :attr:`vocabularies`.
        inputs
            (n, 5, s, s): :func:`overlay_inputs`.
        descriptors
            (n, d): the maps' descriptors, as in training.
        """
        head = list(self.vocabularies).index(who)
        rows = (torch.as_tensor(descriptors, dtype=torch.float32) - self.centre) / self.scale
        total = torch.zeros(len(inputs), len(self.vocabularies[who]))
        with torch.no_grad():
            for net in self.nets:
                total += net(inputs, rows)[head].softmax(dim=1)
        return (total / len(self.nets)).numpy()

    def state(self) -> dict:
        """Everything the model is, as tensors, strings and numbers (``torch.save`` it; it
        loads with ``weights_only=True``, which runs no code)."""
        return {
            "version": VERSION,
            "vocabularies": {who: list(words) for who, words in self.vocabularies.items()},
            "centre": self.centre,
            "scale": self.scale,
            "nets": [net.state_dict() for net in self.nets],
        }

    @classmethod
    def from_state(cls, state: Mapping) -> OverlayModel:
        """The model :meth:`state` saved.

        Raises
        ------
        ValueError
            ``state`` is of another version or other settings, or not a saved model.
        """
        try:
            if state["version"] != VERSION:
                raise ValueError(f"saved by version {state['version']}, this is {VERSION}")
            vocabularies = {who: tuple(words) for who, words in state["vocabularies"].items()}
            nets = []
            for weights in state["nets"]:
                net = _OverlayNet(len(state["centre"]), [len(v) for v in vocabularies.values()])
                net.load_state_dict(weights)
                nets.append(net.eval())
            return cls(tuple(nets), vocabularies, state["centre"], state["scale"])
        except (KeyError, TypeError, RuntimeError) as error:
            raise ValueError(f"not a saved overlay model ({error})") from error


def fit_overlay_model(
    inputs: Tensor,
    descriptors: np.ndarray,
    verdicts: Mapping[str, Sequence[str | None]],
    *,
    members: int = MEMBERS,
    epochs: int = EPOCHS,
    seed: int = 0,
    progress: str | None = None,
) -> OverlayModel:
    """Train the averaged nets on named maps.

    Parameters
    ----------
    inputs
        (n, 5, s, s): :func:`overlay_inputs` of the named maps.
    descriptors
        (n, d): their descriptors (share, rank, geometry).
    verdicts
        Annotator -> each map's verdict: a concept, ``""`` (unnamed or discarded) or ``None``
        (not judged by them). One head per annotator.
    members, epochs, seed
        Nets averaged, passes over the maps per net, the first net's seed.
    progress
        The progress bar's label; ``None``: no bar.
    """
    n = len(inputs)
    if descriptors.shape[0] != n or any(len(v) != n for v in verdicts.values()) or not verdicts:
        raise ValueError(
            f"inputs, descriptors, verdicts: expected {n} maps each and at least one annotator"
        )
    vocabularies = {
        who: ("", *sorted({v for v in said if v})) for who, said in verdicts.items()
    }  # fmt: skip
    targets = torch.tensor(
        [[_UNJUDGED if v is None else vocabularies[who].index(v) for v in said]
         for who, said in verdicts.items()]
    ).T  # fmt: skip
    rows = torch.as_tensor(descriptors, dtype=torch.float32)
    centre, scale = rows.mean(dim=0), rows.std(dim=0).clamp(min=1e-6)
    rows = (rows - centre) / scale
    shift = max(1, round(_SHIFT * inputs.shape[-1] / 64))
    bar = tqdm(total=members * epochs, desc=progress, unit="epoch", disable=progress is None)
    nets = []
    for member in range(members):
        generator = torch.Generator().manual_seed(seed + member)
        torch.manual_seed(seed + member)  # the nets' initial weights and dropout
        net = _OverlayNet(rows.shape[1], [len(v) for v in vocabularies.values()])
        optimiser = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-3)
        for _ in range(epochs):
            net.train()
            order = torch.randperm(n, generator=generator)
            for start in range(0, n, 32):
                batch = order[start : start + 32]
                x = _augment(inputs[batch], shift, generator)
                outputs = net(x, rows[batch])
                loss = sum(
                    F.cross_entropy(out, targets[batch, h], ignore_index=_UNJUDGED, reduction="sum")
                    for h, out in enumerate(outputs)
                ) / len(batch)  # fmt: skip
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            bar.update()
        nets.append(net.eval())
    bar.close()
    return OverlayModel(tuple(nets), vocabularies, centre, scale)


def _augment(x: Tensor, shift: int, generator: torch.Generator) -> Tensor:
    """Mirror half the maps and shift the batch by a few pixels (image and map together)."""
    mirrored = torch.rand(len(x), generator=generator) < 0.5
    x = torch.where(mirrored[:, None, None, None], x.flip(-1), x)
    dx, dy = torch.randint(-shift, shift + 1, (2,), generator=generator).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))
