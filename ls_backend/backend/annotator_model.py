"""What one annotator does with a map, learnt from their earlier namings: the proposal's model.

A map published from a bundle with embeddings carries its embedding (what it shows: the
classifier's features under its hot spot, and where the hot spot lies on the object; see
``xnn_training.bundle.embeddings``) next to the descriptors of
:func:`ls_backend.backend.naming.describe_map`.
:func:`fit_annotator_model` learns, from all of one annotator's earlier namings of every
category, a classifier from those numbers to what *they* did with each map: one of their
concepts, leave it unsorted, or discard it. Names therefore carry across categories: the "beak"
of board 1 is a class, proposed for board 2's maps that look and sit like board 1's beaks.

The classifier is extremely randomised trees (``ExtraTreesClassifier``) on every column and,
where the data set locates the object's parts (the embedding holds each part's share of the
hot spot), their mean with gradient-boosted trees (``HistGradientBoostingClassifier``) on the
``where`` columns alone (where the hot spot lies, which parts it covers, how focused it is).
The randomised trees need no scaling (the layers' scales differ), mix appearance and position
freely and keep maps of one look together within a board; the boosted trees make sharp use of
the few columns that say which part a map shows and whether it is focused enough to name.
Boosting on every column learnt the species' colours of the earlier boards and grouped worse on
a new one; boosting without the part shares, on the geometry and descriptors alone, grouped
worse than the randomised trees alone, and choosing per annotator by cross-validation did not
find that out reliably (docs/label-studio.md has the figures). Both fit two thousand maps in
about a second.

Where a concept's maps sit carries across categories better than how they look: toybirds'
parts change colour between species, and so do real birds'. So the names come from a second,
smaller forest, the *namer*, that sees only where the hot spot lies and how focused it is (the
embedding's geometry, the parts' shares of its heat when the data set locates parts, and the
descriptors: the trailing ``where`` columns) and learns only from the maps the annotator named.
Appearance still shapes the groups: within one board, maps of one part look alike, and the full
model keeps them together.

:func:`propose` turns the probabilities into a board. A map put in a wrong group costs the
annotator the same one drag as a map left in Unsorted, so each map starts in its likeliest
class (the fewest expected drags), ties going to Unsorted: a map is grouped only where its group
beats Unsorted, by the annotator's margin. The margin is how far the model's probabilities can
be trusted for this annotator: the one of :data:`MARGINS` that would have cost their earlier
boards the fewest drags, in a cross-validation over whole boards. Someone who leaves many maps
unnamed for reasons the features barely show (a hot spot straddling two parts) gets a cautious
proposal instead of one that makes them drag more than an empty board would.

A group is named after the concept of the namer's highest mean probability over its maps when
that mean is at least :data:`NAME_CONFIDENCE`, the full model's mean probabilities put the same
concept first, and no larger group took the name: a wrong name costs the annotator more (read,
clear, type) than an empty one (type). Figures: docs/label-studio.md.

:func:`cold_start` is the proposal before any history: the maps of each X-feature (the prior),
split where their heat centres lie far apart, and of each such group only the maps near its
centre in embedding space; the rest, and the maps that light up the background off every
located part, stay in Unsorted.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cache

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier
from threadpoolctl import ThreadpoolController

from label_config import BOARD_DISCARD, DISCARDED, NAMED, UNNAMED, UNSORTED, group_bucket
from ls_backend.backend.clusters import single_link
from ls_backend.backend.moves import moves_needed

__all__ = [
    "CORE",
    "MARGINS",
    "MIN_NAMINGS",
    "NAME_CONFIDENCE",
    "OFF_PARTS",
    "AnnotatorModel",
    "Proposal",
    "cold_start",
    "concept_of",
    "fit_annotator_model",
    "label_of",
    "propose",
]

MIN_NAMINGS = 20
"""Earlier maps with embeddings (of the board's embedding space) needed before the model is used."""
NAME_CONFIDENCE = 0.35
"""The namer's mean probability of a concept over a group's maps from which the group may be
given that name (the full model must agree on the concept too)."""
MARGINS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.35, 0.5)
"""The handicaps against Unsorted that :func:`fit_annotator_model` chooses from."""
CORE = 0.7
"""Cold start: the share of each group's maps, nearest to its centre, that start grouped."""
OFF_PARTS = 0.5
"""Cold start: a map with at least this share of its hot spot off every located part starts in
Unsorted (it shows the background, which annotators leave or discard)."""
_NEAR = 0.25  # heat-centre distance (image fractions) that splits an X-feature's maps
_TREES = 100
_LEAF = 8  # leaves of at least 8 maps: the best of 2, 4, 8 in the replay on two seeds
_ROUNDS = 50  # boosting rounds at a learning rate of 0.2: as good as 100 at 0.1, twice as fast
_FOLDS = 3  # cross-validation of the margin: three folds of whole boards
_NAMED = "named:"
_ALL = 10**6  # group buckets when a proposal is scored: every concept gets one


def label_of(status: str, concept: str) -> str:
    """The class of a naming: ``named:<concept>``, ``unnamed`` or ``discarded``."""
    return _NAMED + concept if status == NAMED else status


def concept_of(label: str) -> str | None:
    """The concept of a ``named:`` class; ``None`` for unnamed and discarded."""
    return label[len(_NAMED) :] if label.startswith(_NAMED) else None


@dataclass
class AnnotatorModel:
    """One annotator's classifiers over map features (embedding, then descriptors)."""

    space: str
    """The embedding space it was fitted in (``embedding_space`` of the task data)."""
    width: int
    classes: list[str]
    forest: ExtraTreesClassifier
    """What they did with a map, from every column."""
    boost: HistGradientBoostingClassifier | None
    """The same, from the ``where`` columns, when they hold part shares (``None`` otherwise);
    :meth:`probabilities` averages the two."""
    history: int
    """How many earlier maps it learnt from."""
    concepts: list[str]
    """The annotator's concepts, the namer's classes (sorted; empty when they named nothing)."""
    namer: ExtraTreesClassifier | None
    """Concept from the ``where`` columns, fitted on the named maps; ``None`` for fewer than two
    concepts."""
    where: int
    """How many trailing feature columns the namer and :attr:`boost` see."""
    margin: float = 0.0
    """What a map's likeliest group must beat Unsorted by (in probability) for the map to start
    there: chosen from :data:`MARGINS` by what would have cost this annotator's earlier boards
    the fewest drags."""

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(n, len(classes)) probabilities for rows of ``features`` (n, width)."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.width:
            raise ValueError(f"features must be (n, {self.width}), got {features.shape}")
        if not len(features):
            return np.zeros((0, len(self.classes)))
        forest = self.forest.predict_proba(features)
        if self.boost is None:
            return forest
        with _one_thread():
            boosted = self.boost.predict_proba(features[:, -self.where :])
        return (forest + boosted) / 2

    def concept_probabilities(self, features: np.ndarray) -> np.ndarray:
        """(n, len(concepts)) the namer's probabilities for rows of ``features`` (n, width)."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.width:
            raise ValueError(f"features must be (n, {self.width}), got {features.shape}")
        if self.namer is None or not len(features):
            return np.ones((len(features), len(self.concepts)))
        return self.namer.predict_proba(features[:, -self.where :])

    def propose(self, ids: Sequence[str], features: np.ndarray, *, groups: int) -> Proposal:
        """The board proposal (:func:`propose`) for maps ``ids`` with rows ``features``."""
        return propose(
            ids,
            self.probabilities(features),
            self.classes,
            naming=self.concept_probabilities(features),
            concepts=self.concepts,
            groups=groups,
            margin=self.margin,
        )


def _forest(max_features: float) -> ExtraTreesClassifier:
    return ExtraTreesClassifier(
        n_estimators=_TREES,
        min_samples_leaf=_LEAF,
        max_features=max_features,
        random_state=0,
        n_jobs=1,
    )


@cache
def _thread_pools() -> ThreadpoolController:
    return ThreadpoolController()  # looks up the loaded OpenMP libraries once (ms each time)


def _one_thread() -> AbstractContextManager:
    """The boosted trees on one OpenMP thread (of the calling thread). Their threads spin while
    they wait: beside the server's other threads, on a busy 2-core machine, a fit with the
    margin's folds took 44 s for 933 maps on every core and 5 s on one."""
    return _thread_pools().limit(limits=1, user_api="openmp")


def _boost() -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        max_iter=_ROUNDS,
        learning_rate=0.2,
        max_leaf_nodes=15,
        min_samples_leaf=10,
        l2_regularization=1.0,
        early_stopping=False,  # deterministic, and every map of a small history counts
        random_state=0,
    )


def fit_annotator_model(
    features: np.ndarray,
    labels: Sequence[str],
    *,
    space: str,
    where: int | None = None,
    parts: int = 0,
    boards: Sequence[str] | None = None,
) -> AnnotatorModel | None:
    """Fit one annotator's model on their earlier maps.

    Parameters
    ----------
    features
        (n, d) features of the earlier maps (embedding, then descriptors), all of one
        embedding ``space``.
    labels
        :func:`label_of` of each map.
    space
        Which embeddings these are (the same network, layers and geometry).
    where
        How many trailing columns of ``features`` say where the hot spot lies (the namer's
        input: :func:`ls_backend.backend.naming.where_columns` for
        :func:`ls_backend.backend.naming.features_of`
        rows); ``None``: all columns.
    parts
        How many of the ``where`` columns are the parts' shares of the hot spot
        (:func:`ls_backend.backend.naming.part_columns`). With none, the boosted trees are left out:
        the geometry and descriptors alone say too little for them.
    boards
        The board (category) of each map. Given, the model's :attr:`AnnotatorModel.margin` is
        chosen by cross-validation over whole boards: models fitted without a third of the
        boards propose those boards with each of :data:`MARGINS`, and the margin with the
        fewest drags to what the annotator did wins (ties: the smaller). An annotator whose
        choices the model mistakes gets a more cautious proposal, so no one is made to drag
        more than from an all-unsorted board. ``None``: margin 0.

    Returns
    -------
    AnnotatorModel or None
        ``None`` below :data:`MIN_NAMINGS` maps or with a single class (no basis).
    """
    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray([str(label) for label in labels], dtype=object)
    if len(features) != len(labels):
        raise ValueError(f"{len(features)} feature rows for {len(labels)} labels")
    if len(features) < MIN_NAMINGS or len(set(labels)) < 2:
        return None
    labels = labels.astype(str)
    model = _fit(features, labels, space, where, parts)
    if boards is not None:
        model.margin = _best_margin(
            features, labels, np.asarray(boards, dtype=str), space, where, parts
        )
    return model


def _fit(
    features: np.ndarray, labels: np.ndarray, space: str, where: int | None, parts: int
) -> AnnotatorModel:
    forest = _forest(max_features=0.3).fit(features, labels)
    where = features.shape[1] if where is None else min(where, features.shape[1])
    boost = None
    if parts > 0:
        with _one_thread():
            boost = _boost().fit(features[:, -where:], labels)
    named = np.array([concept_of(label) is not None for label in labels])
    concepts = sorted({concept_of(label) for label in labels[named]})
    namer = None
    if len(concepts) > 1:  # few columns: each split may look at all of them
        namer = _forest(max_features=1.0).fit(features[named, -where:], labels[named])
        concepts = [concept_of(label) for label in namer.classes_]
    return AnnotatorModel(
        space,
        features.shape[1],
        list(forest.classes_),
        forest,
        boost,
        len(labels),
        concepts,
        namer,
        where,
    )


def _best_margin(
    features: np.ndarray,
    labels: np.ndarray,
    boards: np.ndarray,
    space: str,
    where: int | None,
    parts: int,
) -> float:
    if len(boards) != len(labels):
        raise ValueError(f"{len(boards)} boards for {len(labels)} labels")
    names = list(dict.fromkeys(boards))
    if len(names) < 2:
        return 0.0
    drags = np.zeros(len(MARGINS))
    for fold in (names[i::_FOLDS] for i in range(min(_FOLDS, len(names)))):
        held = np.isin(boards, fold)
        if len(set(labels[~held])) < 2 or (~held).sum() < MIN_NAMINGS:
            continue
        model = _fit(features[~held], labels[~held], space, where, parts)
        for board in fold:
            rows = np.flatnonzero(boards == board)
            ids = [str(i) for i in rows]
            goal = _board_of(ids, labels[rows])
            probabilities = model.probabilities(features[rows])
            naming = model.concept_probabilities(features[rows])
            for k, margin in enumerate(MARGINS):
                proposal = propose(
                    ids,
                    probabilities,
                    model.classes,
                    naming=naming,
                    concepts=model.concepts,
                    groups=_ALL,
                    margin=margin,
                )
                drags[k] += moves_needed(proposal.buckets, goal)
    return float(MARGINS[int(np.argmin(drags))])


def _board_of(ids: Sequence[str], labels: Sequence[str]) -> dict[str, list[str]]:
    """The board an annotator made: labels as ranker buckets (one per concept)."""
    board: dict[str, list[str]] = {UNSORTED: [], BOARD_DISCARD: []}
    for activation, label in zip(ids, labels, strict=True):
        bucket = {UNNAMED: UNSORTED, DISCARDED: BOARD_DISCARD}.get(label, label)
        board.setdefault(bucket, []).append(activation)
    return board


@dataclass(frozen=True)
class Proposal:
    """A board proposal: its buckets and the names of its groups."""

    buckets: dict[str, list[str]]
    """Ranker value: ``{"_": [...], "g1": [...], ..., "discard": [...]}``."""
    names: dict[int, str]
    """Group index (1-based) -> proposed name, for groups with a confident name."""


def _bucket_of(row: np.ndarray, unsorted: int | None, margin: float) -> int:
    best = int(np.argmax(row))
    if unsorted is not None and row[unsorted] + margin >= row[best]:
        return unsorted  # nothing moves without reason
    return best


def propose(
    ids: Sequence[str],
    probabilities: np.ndarray,
    classes: Sequence[str],
    *,
    naming: np.ndarray,
    concepts: Sequence[str],
    groups: int,
    margin: float = 0.0,
) -> Proposal:
    """Start each map in the bucket where it most likely ends, name the confident groups.

    Parameters
    ----------
    ids
        The board's activation ids, one per row of ``probabilities``.
    probabilities
        (n, len(classes)), from :meth:`AnnotatorModel.probabilities`.
    classes
        :func:`label_of` classes.
    naming
        (n, len(concepts)), from :meth:`AnnotatorModel.concept_probabilities`.
    concepts
        The namer's concepts.
    groups
        Group buckets in the config: a concept beyond them (the fewest maps) stays in Unsorted.
    margin
        What a map's likeliest group must beat Unsorted by (:attr:`AnnotatorModel.margin`).
    """
    classes, concepts = list(classes), list(concepts)
    if probabilities.shape != (len(ids), len(classes)):
        raise ValueError(f"probabilities must be ({len(ids)}, {len(classes)})")
    if naming.shape != (len(ids), len(concepts)):
        raise ValueError(f"naming must be ({len(ids)}, {len(concepts)})")
    unsorted = classes.index(UNNAMED) if UNNAMED in classes else None
    # The full model's view of the concepts, to agree with the namer's before a group is named.
    full = probabilities[:, [classes.index(label_of(NAMED, c)) for c in concepts]]
    full = full / np.maximum(full.sum(axis=1, keepdims=True), 1e-12)
    buckets: dict[str, list[str]] = {UNSORTED: [], BOARD_DISCARD: []}
    by_concept: dict[str, list[int]] = {}
    for i, row in enumerate(probabilities):
        label = classes[_bucket_of(row, unsorted, margin)]
        concept = concept_of(label)
        if concept is not None:
            by_concept.setdefault(concept, []).append(i)
        else:
            buckets[BOARD_DISCARD if label == DISCARDED else UNSORTED].append(ids[i])
    # Largest groups first, ties by name, so the proposal is deterministic.
    ordered = sorted(by_concept.items(), key=lambda item: (-len(item[1]), item[0]))
    names: dict[int, str] = {}
    for index, (_, rows) in enumerate(ordered, start=1):
        members = [ids[i] for i in rows]
        if index > groups:
            buckets[UNSORTED].extend(members)
            continue
        buckets[group_bucket(index)] = members
        if not concepts:
            continue
        mean = naming[rows].mean(axis=0)
        best = int(np.argmax(mean))
        agreed = int(np.argmax(full[rows].mean(axis=0))) == best
        if mean[best] >= NAME_CONFIDENCE and agreed and concepts[best] not in names.values():
            names[index] = concepts[best]
    return Proposal(buckets, names)


def cold_start(
    ids: Sequence[str],
    embeddings: np.ndarray,
    x_features: Sequence[int],
    heats: Sequence[tuple[float, float] | None],
    *,
    groups: int,
    off_parts: Sequence[float] | None = None,
) -> Proposal:
    """Groups for a board with no history, from the X-features and the embeddings.

    The X-feature is the prior (the xNN's concepts); its maps are split where their heat
    centres lie more than 0.25 of the image apart (one X-feature firing on two places is often
    two concepts). Within each such group the embeddings, standardised over the board, say which
    maps are typical: the :data:`CORE` share nearest to the group's mean start grouped, the rest
    (and groups of fewer than three maps) stay in Unsorted. No names: there is no basis.

    ``off_parts`` (:func:`ls_backend.backend.naming.off_parts`, where the data set locates parts):
    maps
    with at least :data:`OFF_PARTS` of their hot spot off every part stay in Unsorted and out
    of the groups. A classifier whose maps often light up the background beside the object
    would otherwise start most of a first board in groups its annotator then empties.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    buckets: dict[str, list[str]] = {UNSORTED: [], BOARD_DISCARD: []}
    if not len(ids):
        return Proposal(buckets, {})
    if off_parts is not None:
        background = np.asarray(off_parts, dtype=np.float64) >= OFF_PARTS
        if len(background) != len(ids):
            raise ValueError(f"{len(background)} off-part shares for {len(ids)} maps")
        buckets[UNSORTED] = [i for i, off in zip(ids, background, strict=True) if off]
        kept = np.flatnonzero(~background)
        ids = [ids[i] for i in kept]
        embeddings, x_features = embeddings[kept], [x_features[i] for i in kept]
        heats = [heats[i] for i in kept]
        if not ids:
            return Proposal(buckets, {})
    scale = embeddings.std(axis=0)
    z = (embeddings - embeddings.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    clusters: list[list[int]] = []
    features = np.asarray(x_features)
    for feature in np.unique(features):
        clusters += _split_by_heat(np.flatnonzero(features == feature).tolist(), heats)
    clusters.sort(key=lambda c: (-len(c), ids[c[0]]))
    index = 0
    for members in clusters:
        if len(members) < 3 or index >= groups:
            buckets[UNSORTED] += [ids[i] for i in members]
            continue
        distance = np.linalg.norm(z[members] - z[members].mean(axis=0), axis=1)
        core = distance <= np.quantile(distance, CORE)
        index += 1
        buckets[group_bucket(index)] = [ids[i] for i, c in zip(members, core, strict=True) if c]
        buckets[UNSORTED] += [ids[i] for i, c in zip(members, core, strict=True) if not c]
    return Proposal(buckets, {})


def _split_by_heat(
    members: list[int], heats: Sequence[tuple[float, float] | None]
) -> list[list[int]]:
    """Single-link clusters of ``members`` by heat centre at distance 0.25."""
    groups = single_link([heats[i] for i in members], _NEAR)
    return [[members[i] for i in group] for group in groups]
