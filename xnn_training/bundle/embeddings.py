"""The bundle's map embeddings file: what each map shows, one row per significant activation.

A map's embedding (docs/maps.md, "Map embeddings"; computed by :mod:`xnn_training.maps.embed` during
``xnaming explain``) is the classifier's activations at a few layers below the map layer,
averaged under the map's hot spot, followed by :data:`GEOMETRY`: where the hot spot lies in the
image and on the object, and, when the data set locates the object's parts (CUB-200's part
locations, toybirds' part masks), how the hot spot's heat falls among those parts. While a
bundle is written each map file keeps its map's embedding (array
:data:`xnn_training.bundle.io.MAP_EMBEDDING`), so interrupted and sharded runs lose nothing;
when the bundle is finished :func:`write_embeddings` gathers them into one file,
``embeddings.npz``, in ``activations.csv`` order. :func:`read_embeddings` reads it back and
checks that it belongs to its bundle. Light: numpy and the bundle reader only, no torch.

Format (docs/formats.md): ``embeddings.npz`` holds ``activation_id`` (str, n), ``embedding``
(float32, n x d), ``columns`` (str, d: ``<layer>:<channel>``, the geometry names, then
``part:<name>`` and ``part:elsewhere``, then the same at each tighter radius as
``part@<radius>:<name>``, when the manifest's entry lists ``parts``, and last, when it says
``part_masks``, the shares of the parts' masks as ``part@mask:<name>``) and
``fingerprint`` (str: :func:`bundle_fingerprint` of the manifest it was written for).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xnn_training.bundle.io import (
    ACTIVATION_COLUMNS,
    ACTIVATIONS_TABLE,
    MANIFEST,
    MAP_EMBEDDING,
    Bundle,
    BundleError,
    read_bundle,
    read_table,
)
from xnn_training.maps.hot_spot import HOT_SPOT

__all__ = [
    "ELSEWHERE",
    "EMBEDDINGS_FILE",
    "GEOMETRY",
    "MASK_PREFIX",
    "PART_RADII",
    "EmbeddingError",
    "Embeddings",
    "bundle_fingerprint",
    "check_embeddings",
    "embeddings_entry",
    "read_embeddings",
    "write_embeddings",
]

EMBEDDINGS_FILE = "embeddings.npz"
GEOMETRY: tuple[str, ...] = (
    "hot_x",
    "hot_y",
    "hot_area",
    "hot_spread",
    "object_dx",
    "object_dy",
    "object_distance",
    "object_size",
    "relative_area",
)
"""The geometry columns, after the appearance columns. ``hot_x``, ``hot_y``: the hot spot's
centre (map-weighted, fractions of the width and height, 0 = left/top); ``hot_area``: its share
of the pixels; ``hot_spread``: root-mean-square distance of its heat from its centre (image
fractions). The object is located from the map layer's activation energy: ``object_dx``,
``object_dy``: the hot spot's centre minus the object's, in units of the object's spread along
that axis; ``object_distance``: their hypotenuse; ``object_size``: the object's share of the
image; ``relative_area``: ``hot_area / object_size``."""
PART_RADII: tuple[float, ...] = (0.2, 0.1, 0.05)
"""The part shares' radii, widest first (fractions of the image side): at each, a pixel belongs
to the nearest located part within that distance, and farther from every part to
:data:`ELSEWHERE`. The widest says which part a hot spot is near; the tighter ones whether it
lies on the part or on the background beside it (a part location is one point, not a mask)."""
ELSEWHERE = "elsewhere"
"""The last part column of each radius: the hot spot's heat farther than it from every part
(and of the masks' block: the heat off every part's mask)."""
MASK_PREFIX = "part@mask:"
"""The column prefix of the parts' mask shares, for a data set with part masks (toybirds; a
segmentation data set): the hot spot's heat on each part's mask, the last block. Points say
which part a hot spot is *near*; a mask says which part it *covers*, which is what people name
(a wing folded on the body has its centre near the body's)."""
_NOT_IDENTITY = (
    "created", "finished", "complete", "files", "versions", "concepts", "alignment",
)  # fmt: skip
"""Manifest entries that change between the runs of one bundle (clocks, hashes, versions) or
follow from its identity (an aligned xNN's concepts and alignment follow from its run)."""


class EmbeddingError(BundleError):
    """An embeddings file that cannot be used with its bundle; the message names the file and
    the fix."""


@dataclass(frozen=True)
class Embeddings:
    """A bundle's map embeddings: row ``i`` belongs to ``activation_ids[i]``, which is row
    ``i`` of the bundle's ``activations.csv``.

    Attributes
    ----------
    activation_ids
        The bundle's activation ids, in ``activations.csv`` order.
    values
        float32, (n, d): the appearance columns of each layer, then :data:`GEOMETRY`, then
        the parts' shares of the hot spot's heat (when the data set locates parts).
    columns
        The d column names: ``<layer>:<channel>``, the geometry names, ``part:<name>``.
    layers
        Layer name -> its number of channels, in column order (the manifest's ``layers``).
    parts
        The located parts, in column order (the manifest's ``parts``); empty when the data set
        has none. At each of :attr:`radii`, each has a column, then :data:`ELSEWHERE`.
    radii
        The part shares' radii, in column order (the manifest's ``part_radii``).
    masks
        Whether the parts' mask shares follow (the manifest's ``part_masks``): one more block
        of :attr:`parts` and :data:`ELSEWHERE`.
    """

    activation_ids: tuple[str, ...]
    values: np.ndarray
    columns: tuple[str, ...]
    layers: dict[str, int]
    parts: tuple[str, ...] = ()
    radii: tuple[float, ...] = ()
    masks: bool = False

    @property
    def blocks(self) -> dict[str, slice]:
        """The columns of each layer, then ``"geometry"``, then ``"parts"`` (when located):
        name -> slice of ``values``' columns (standardise per block: the layers' scales differ)."""
        blocks, start = {}, 0
        for layer, width in self.layers.items():
            blocks[layer] = slice(start, start + width)
            start += width
        blocks["geometry"] = slice(start, start + len(GEOMETRY))
        if self.parts:
            start += len(GEOMETRY)
            width = (len(self.parts) + 1) * (len(self.radii) + self.masks)
            blocks["parts"] = slice(start, start + width)
        return blocks

    @property
    def where(self) -> int:
        """How many trailing columns say where the hot spot lies: the geometry and the parts."""
        return self.values.shape[1] - self.blocks["geometry"].start

    @property
    def appearance(self) -> np.ndarray:
        """The layers' columns, (n, sum of their channels)."""
        return self.values[:, : self.blocks["geometry"].start]

    @property
    def geometry(self) -> np.ndarray:
        """The :data:`GEOMETRY` columns, (n, len(GEOMETRY))."""
        return self.values[:, self.blocks["geometry"]]

    def rows(self, activation_ids: Sequence[str]) -> np.ndarray:
        """The embeddings of ``activation_ids``, in that order, (len(activation_ids), d).

        Raises
        ------
        KeyError
            An id that is not one of the bundle's activations (the first few are named).
        """
        index = self._index
        missing = [a for a in activation_ids if a not in index]
        if missing:
            raise KeyError(f"not activations of this bundle: {missing[:5]}")
        return self.values[[index[a] for a in activation_ids]]

    @cached_property
    def _index(self) -> dict[str, int]:
        return {a: i for i, a in enumerate(self.activation_ids)}


def embeddings_entry(
    layers: Mapping[str, int], parts: Sequence[str] = (), *, masks: bool = False
) -> dict[str, Any]:
    """The manifest's ``embeddings`` entry for ``layers`` (name -> channels, in order), the
    data set's located ``parts`` (none: no part columns) and whether it has part ``masks``
    (then the masks' shares follow the radii's).

    It is part of the bundle's identity: a bundle is resumed only with the same layers.
    """
    entry = {
        "file": EMBEDDINGS_FILE,
        "layers": {str(name): int(width) for name, width in layers.items()},
        "pooling": "map-weighted mean over the hot spot",
        "hot_spot": HOT_SPOT,
        "geometry": list(GEOMETRY),
    }
    if parts:
        entry["parts"] = [str(name) for name in parts]
        entry["part_radii"] = list(PART_RADII)
        if masks:
            entry["part_masks"] = True
    return entry


def _part_radii(entry: Mapping[str, Any]) -> tuple[float, ...]:
    """The part shares' radii of a manifest's embeddings ``entry``: its ``part_radii``, the one
    ``part_radius`` of a bundle made before there were several, none without ``parts``."""
    if not entry.get("parts"):
        return ()
    if "part_radii" in entry:
        return tuple(float(r) for r in entry["part_radii"])
    return (float(entry["part_radius"]),)


def bundle_fingerprint(manifest: Mapping[str, Any]) -> str:
    """What the embeddings were computed from: the sha256 of the manifest's identity (its runs,
    data, split, map layer, threshold, embedding layers, ...; not its clocks, hashes or
    package versions). Two runs of the same command give the same fingerprint."""
    identity = {k: v for k, v in manifest.items() if k not in _NOT_IDENTITY}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _columns(entry: Mapping[str, Any]) -> list[str]:
    """The column names of the manifest's embeddings ``entry``."""
    layers, parts = entry["layers"], entry.get("parts", [])
    columns = [f"{layer}:{c}" for layer, width in layers.items() for c in range(width)]
    located = [
        f"{_part_prefix(index, radius)}{name}"
        for index, radius in enumerate(_part_radii(entry))
        for name in [*parts, ELSEWHERE]
    ]
    if parts and entry.get("part_masks"):
        located += [f"{MASK_PREFIX}{name}" for name in [*parts, ELSEWHERE]]
    return columns + list(GEOMETRY) + located


def _part_prefix(index: int, radius: float) -> str:
    """The column prefix of the ``index``-th part radius: ``part:`` for the widest (the name
    of a single-radius bundle's columns too), ``part@<radius>:`` for the tighter ones."""
    return "part:" if index == 0 else f"part@{radius:g}:"


def write_embeddings(root: Path) -> Path | None:
    """Gather the embeddings kept in a bundle's map files into ``root/embeddings.npz``.

    Called by ``xnaming explain`` when every image is in ``activations.csv`` (after merging
    the parts), before :meth:`~xnn_training.bundle.io.BundleWriter.finish` takes the hashes.
    Rows come in ``activations.csv`` order, so the file does not depend on how the run was
    split or resumed.

    Returns
    -------
    Path or None
        The file written; None when the manifest has no ``embeddings`` entry (nothing to do).

    Raises
    ------
    EmbeddingError
        A map file without its embedding, or of another width.
    """
    root = Path(root)
    manifest = json.loads((root / MANIFEST).read_text())
    entry = manifest.get("embeddings")
    if not entry:
        return None
    table = root / ACTIVATIONS_TABLE  # none yet in a bundle of no image at all
    activations = read_table(table) if table.is_file() else pd.DataFrame(columns=ACTIVATION_COLUMNS)
    columns = _columns(entry)
    values = np.zeros((len(activations), len(columns)), np.float32)
    for row, map_path in enumerate(activations["map_path"]):
        with np.load(root / map_path, allow_pickle=False) as arrays:
            if MAP_EMBEDDING not in arrays.files:
                raise EmbeddingError(
                    f"{root / map_path} has no embedding, yet {root / MANIFEST} asks for them: "
                    "the map was written by another version of xnaming; explain into a new "
                    "directory"
                )
            embedding = arrays[MAP_EMBEDDING]
        if embedding.shape != (len(columns),):
            raise EmbeddingError(
                f"{root / map_path}: an embedding of shape {embedding.shape}, expected "
                f"({len(columns)},); explain into a new directory"
            )
        values[row] = embedding
    path = root / EMBEDDINGS_FILE
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as file:  # np.savez would add ".npz" to a name without it
        np.savez_compressed(
            file,
            activation_id=np.asarray(activations["activation_id"], dtype=str),
            embedding=values,
            columns=np.asarray(columns, dtype=str),
            fingerprint=np.asarray(bundle_fingerprint(manifest)),
        )
    partial.replace(path)
    return path


def read_embeddings(bundle: Bundle | Path) -> Embeddings | None:
    """Read a bundle's map embeddings and check that they belong to it.

    Parameters
    ----------
    bundle
        A bundle read with :func:`xnn_training.bundle.io.read_bundle`, or its directory (read
        here, complete bundles only).

    Returns
    -------
    Embeddings or None
        None for a bundle without embeddings (made before they existed, or with
        ``--embedding-layers none``): its manifest has no ``embeddings`` entry and there is no
        ``embeddings.npz``.

    Raises
    ------
    EmbeddingError
        The file is missing while the manifest names it, truncated or damaged, made for
        another bundle (other runs or settings), or its ids are not the bundle's activations
        in order; the message names the file and says to re-run ``xnaming explain``.
    """
    if not isinstance(bundle, Bundle):
        bundle = read_bundle(Path(bundle))
    path = bundle.root / EMBEDDINGS_FILE
    entry = bundle.manifest.get("embeddings")
    fix = (
        f"re-run `xnaming explain` into a new directory to rebuild the bundle with its {path.name}"
    )
    if not entry:
        if path.exists():
            raise EmbeddingError(
                f"{path} does not belong to {bundle.root}: its {MANIFEST} has no embeddings "
                f"entry; delete the file, or {fix}"
            )
        return None
    if not path.is_file():
        raise EmbeddingError(f"{path} is missing, yet {bundle.root / MANIFEST} names it; {fix}")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            ids = tuple(str(a) for a in arrays["activation_id"])
            values = np.asarray(arrays["embedding"], dtype=np.float32)
            columns = tuple(str(c) for c in arrays["columns"])
            fingerprint = str(arrays["fingerprint"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise EmbeddingError(f"{path} is truncated or damaged ({error}); {fix}") from None
    if fingerprint != bundle_fingerprint(bundle.manifest):
        raise EmbeddingError(
            f"{path} was made for another bundle (other runs or settings than "
            f"{bundle.root / MANIFEST}); {fix}"
        )
    expected = tuple(bundle.activations["activation_id"])
    if ids != expected:
        unknown = sorted(set(ids) - set(expected))[:3]
        absent = sorted(set(expected) - set(ids))[:3]
        detail = "; ".join(
            part
            for part in (
                f"not in activations.csv: {unknown}" if unknown else "",
                f"missing: {absent}" if absent else "",
            )
            if part
        )
        detail = detail or "the same ids in another order"
        raise EmbeddingError(f"{path} does not match activations.csv ({detail}); {fix}")
    layers = {str(name): int(width) for name, width in entry["layers"].items()}
    if columns != tuple(_columns(entry)) or values.shape != (len(ids), len(columns)):
        raise EmbeddingError(
            f"{path} has {values.shape} values and columns that are not those of the "
            f"manifest's layers {list(layers)} and parts {entry.get('parts', [])}; {fix}"
        )
    if not np.isfinite(values).all():
        raise EmbeddingError(f"{path} holds values that are not finite numbers; {fix}")
    values.setflags(write=False)
    parts = tuple(entry.get("parts", ()))
    masks = bool(parts) and bool(entry.get("part_masks"))
    return Embeddings(ids, values, columns, layers, parts, _part_radii(entry), masks)


def check_embeddings(bundle: Bundle | Path, *, warn: Callable[[str], None]) -> Embeddings | None:
    """:func:`read_embeddings`, saying through ``warn`` (once) when the bundle has none.

    What ``xnaming publish`` calls before it creates anything in Label Studio: a bundle made
    before embeddings existed still publishes (the ML backend then proposes from the maps'
    geometry alone), while a damaged or foreign embeddings file stops it.

    Raises
    ------
    EmbeddingError
        As :func:`read_embeddings`.
    """
    embeddings = read_embeddings(bundle)
    if embeddings is None:
        root = bundle.root if isinstance(bundle, Bundle) else Path(bundle)
        warn(
            f"warning: {root} has no map embeddings ({EMBEDDINGS_FILE}; the bundle was made "
            "before xnaming wrote them, or with --embedding-layers none): the ML backend "
            "proposes from where the maps lie only. For proposals that see what each map "
            "shows, re-run `xnaming explain` into a new directory and publish that bundle."
        )
    return embeddings
