"""``xnaming discover``: machine namings of a bundle's maps, from their embeddings.

An automatic namer to compare people with (docs/analysis.md, "Machine namings"). Per category,
the significant maps are clustered on their embeddings (:mod:`xnn_training.bundle.embeddings`: the
classifier's features under each map's hot spot and where the hot spot lies on the object):

1. each block of the embedding (every layer, the geometry) is standardised over the category's
   maps and scaled to the same weight, so neither a wide layer nor a scale dominates; the map's
   X-feature enters as one more block, one-hot (the prior: the xNN learned one concept per
   X-feature, yet a concept may spread over several X-features or share one);
2. Ward's agglomerative clustering (scikit-learn) for every number of groups from 2 to
   :data:`MAX_GROUPS`, keeping the one of best mean silhouette;
3. uncertain maps stay unnamed: those whose silhouette is below :data:`UNCERTAIN` (closer to
   another group than to their own), and every map of a group covering fewer than
   ``min_images`` images (``xnaming analyze`` would drop it);
4. each group is named by where its maps sit on the object (:func:`place_name`, e.g.
   ``upper-left``), with `` 2``, `` 3`` after a name two groups share.

The namings table has the ``made_by`` column set to ``machine`` and the annotator's name starts
with ``auto-``, so machine namings are never mistaken for people's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.defaults import MIN_IMAGES
from label_config import MACHINE, MADE_BY, NAMED, NAMINGS_COLUMNS, UNNAMED

__all__ = [
    "AUTO_PREFIX",
    "MAX_GROUPS",
    "UNCERTAIN",
    "agreement_against",
    "discover_namings",
    "place_name",
    "shuffled_groups",
]

AUTO_PREFIX = "auto-"
"""Machine annotators' names start with it."""
MAX_GROUPS = 10
"""The most groups a category is split into."""
UNCERTAIN = 0.0
"""Maps whose silhouette is below this are left unnamed."""
_OFF_CENTRE = 0.25
"""How far (in the object's spreads) a group's centre must lie from the object's to be named
after that side."""


def place_name(dx: float, dy: float) -> str:
    """A readable name for where a group sits on the object.

    ``dx``, ``dy``: the group's mean ``object_dx``, ``object_dy`` (the hot spot's centre minus
    the object's, in the object's spreads; image axes, y down). ``upper``/``lower`` and
    ``left``/``right`` beyond a quarter of a spread, ``centre`` within it: ``upper-left``,
    ``lower``, ``centre``.
    """
    vertical = "upper" if dy < -_OFF_CENTRE else "lower" if dy > _OFF_CENTRE else ""
    horizontal = "left" if dx < -_OFF_CENTRE else "right" if dx > _OFF_CENTRE else ""
    return "-".join(part for part in (vertical, horizontal) if part) or "centre"


def _features(values: np.ndarray, blocks: dict[str, slice], x_features: np.ndarray) -> np.ndarray:
    """The clustered matrix: each block standardised and scaled to unit weight, then the
    X-feature one-hot (also unit weight)."""
    parts = []
    for block in blocks.values():
        part = values[:, block].astype(np.float64)
        spread = part.std(axis=0)
        part = (part - part.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
        parts.append(part / np.sqrt(part.shape[1]))
    prior = (x_features[:, None] == np.unique(x_features)[None, :]).astype(np.float64)
    parts.append(prior / np.sqrt(2.0))  # two one-hot rows differ by sqrt(2): unit distance
    return np.hstack(parts)


def _cluster(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ward groups of best mean silhouette, and each map's silhouette."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import silhouette_samples

    n = len(matrix)
    if n < 3:
        return np.zeros(n, dtype=np.int64), np.zeros(n)
    best = None
    for groups in range(2, min(MAX_GROUPS, n - 1) + 1):
        labels = AgglomerativeClustering(n_clusters=groups, linkage="ward").fit_predict(matrix)
        scores = silhouette_samples(matrix, labels)
        if best is None or scores.mean() > best[2]:
            best = (labels, scores, scores.mean())
    return best[0], best[1]


def discover_namings(
    bundle: str | Path,
    *,
    annotator: str = "auto-embeddings",
    min_images: int = MIN_IMAGES,
) -> pd.DataFrame:
    """Machine namings of every significant map of ``bundle``, from its embeddings.

    Parameters
    ----------
    bundle
        A finished map bundle with embeddings (``xnaming explain``).
    annotator
        The machine annotator's name; must start with :data:`AUTO_PREFIX`.
    min_images
        Groups covering fewer distinct images are left unnamed.

    Returns
    -------
    pandas.DataFrame
        The tidy namings table (docs/formats.md) with ``made_by`` = ``machine``, one row per
        activation, in ``activations.csv`` order: ``named`` with the group's name, or
        ``unnamed``.

    Raises
    ------
    ValueError
        A bad annotator name, or a bundle without embeddings (the message says to re-run
        ``xnaming explain``); :class:`xnn_training.bundle.embeddings.EmbeddingError` for a bad
        embeddings file.
    """
    from xnn_training.bundle.embeddings import GEOMETRY, read_embeddings
    from xnn_training.bundle.io import read_bundle

    if not annotator.startswith(AUTO_PREFIX) or annotator == AUTO_PREFIX:
        raise ValueError(
            f"annotator: machine annotators' names start with 'auto-'; got {annotator!r}"
        )
    read = read_bundle(Path(bundle))
    embeddings = read_embeddings(read)
    if embeddings is None:
        raise ValueError(
            f"{read.root} has no map embeddings (made before xnaming wrote them, or with "
            "--embedding-layers none): re-run `xnaming explain` into a new directory"
        )
    activations = read.activations
    where = {name: GEOMETRY.index(name) for name in ("object_dx", "object_dy")}
    concepts = pd.Series("", index=activations.index)
    for _, maps in activations.groupby("category", sort=True):
        rows = maps.index.to_numpy()
        values = embeddings.values[rows]
        matrix = _features(values, embeddings.blocks, maps["x_feature"].to_numpy())
        labels, silhouettes = _cluster(matrix)
        geometry = embeddings.geometry[rows]
        names: dict[int, str] = {}
        sizes = pd.Series(labels).value_counts()  # largest first: it keeps the plain name
        for group in sizes.index:
            mine = labels == group
            if maps["image_id"].to_numpy()[mine].size and (
                pd.unique(maps["image_id"].to_numpy()[mine]).size < min_images
            ):
                continue
            name = place_name(
                float(geometry[mine, where["object_dx"]].mean()),
                float(geometry[mine, where["object_dy"]].mean()),
            )
            taken = sum(1 for n in names.values() if n == name or n.startswith(f"{name} "))
            names[int(group)] = name if not taken else f"{name} {taken + 1}"
        certain = silhouettes >= UNCERTAIN
        concepts.loc[rows] = [
            names.get(int(g), "") if ok else "" for g, ok in zip(labels, certain, strict=True)
        ]
    table = pd.DataFrame(
        {
            "annotator": annotator,
            "category": activations["category"],
            "activation_id": activations["activation_id"],
            "concept": concepts,
            "status": np.where(concepts != "", NAMED, UNNAMED),
            MADE_BY: MACHINE,
        }
    )
    return table.loc[:, [*NAMINGS_COLUMNS, MADE_BY]].reset_index(drop=True)


def shuffled_groups(namings: pd.DataFrame, annotator: str, *, seed: int) -> pd.DataFrame:
    """``namings`` with ``annotator``'s concepts shuffled among their named maps, per category:
    a random grouping with the same named maps and group sizes (the chance level a namer is
    compared with)."""
    rng = np.random.default_rng(seed)
    shuffled = namings.copy()
    mine = (shuffled["annotator"] == annotator) & (shuffled["status"] == NAMED)
    for _, rows in shuffled[mine].groupby("category", sort=True):
        shuffled.loc[rows.index, "concept"] = rng.permutation(rows["concept"].to_numpy())
    return shuffled


def agreement_against(
    activations: pd.DataFrame, namings: pd.DataFrame, annotator: str
) -> pd.DataFrame:
    """The agreement of ``annotator`` with every other annotator (``xnaming analyze``'s
    measures, :func:`analysis.measures.agreement.pair_agreement`), per category and annotator.

    Returns
    -------
    pandas.DataFrame
        category, annotator (the other one), jaccard, agreement_d1, agreement_d2, ari.
    """
    from analysis.inputs import check_activations, check_namings
    from analysis.measures.agreement import pair_agreement
    from analysis.measures.labels import category_namings

    activations = check_activations(activations)
    rows = []
    for category in category_namings(activations, check_namings(namings, activations)):
        if annotator not in category.annotators:
            continue
        a = category.annotators.index(annotator)
        for b, other in enumerate(category.annotators):
            if b == a:
                continue
            measures, _ = pair_agreement(
                category.labels[a], category.labels[b],
                len(category.concepts[a]), len(category.concepts[b]),
            )  # fmt: skip
            rows.append({"category": category.category, "annotator": other, **measures})
    columns = ["category", "annotator", "jaccard", "agreement_d1", "agreement_d2", "ari"]
    return pd.DataFrame(rows).reindex(columns=columns)
