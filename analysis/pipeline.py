"""namings -> every measure: the one function a notebook or the command line calls."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import pandas as pd

from analysis.defaults import D2_TIME_LIMIT, MIN_IMAGES
from analysis.inputs import check_activations, check_namings
from analysis.measures.agreement import agreement_tables
from analysis.measures.carried import Carried, carried_table
from analysis.measures.cleaning import drop_small_concepts
from analysis.measures.compatibility import NameJudge, compatibility_table, name_pair_table
from analysis.measures.coverage import coverage_table
from analysis.measures.distrust import FLAG_LEVEL, DistrustWords, decision_table, distrust_table
from analysis.measures.labels import CategoryNamings, category_namings
from analysis.measures.named_by import named_by_table, reliability_table
from analysis.measures.pair_stats import summarize_pairs
from analysis.measures.purity import purity_table
from analysis.measures.summaries import summary_table
from analysis.report.explanation_images import explanation_examples
from analysis.report.gallery import gallery_table
from label_config import MACHINE, MADE_BY, PERSON, SIMULATED

__all__ = ["AGREEMENT_MEASURES", "COMPATIBILITY_MEASURES", "Results", "analyze"]

AGREEMENT_MEASURES = ["agreement_d1", "agreement_d2", "jaccard", "ari", "nmi"]
COMPATIBILITY_MEASURES = ["exact_d1", "exact_d2", "subset_d1", "subset_d2"]


@dataclass
class Results:
    """Every table of the analysis, as pandas DataFrames (the CSV files of the report).

    Attributes
    ----------
    coverage, purity, named_by, reliability, agreement, matchings, compatibility, name_pairs,
    summaries, dropped
        The tables written as ``<name>.csv`` (see docs/analysis.md for their columns).
    agreement_summary, compatibility_summary
        Per category over annotator pairs: min, mean, std, max (Tables 5 and 6).
    gallery, explanation_examples, distrust, distrust_decisions
        The concept gallery's cards, the example images of the top explanation types, the
        categories ranked by distrusted decisions and every decision's distrust.
    carried
        Per X-feature of an aligned xNN, the concept it carries and how the annotators named
        its maps (:mod:`analysis.measures.carried`; empty for an xNN not aligned).
    categories
        The per-category namings the tables were computed from (for figures).
    activations, namings
        The checked activations and the cleaned namings the tables were computed from.
    annotator_kinds
        Annotator -> "person" or "simulated" (marked by ``xnaming simulate``).
    min_images
        The cleaning threshold used.
    distrust_threshold, distrust_words
        The share of distrusted decisions at which a category is flagged; the background
        names used.
    notes
        Things the user should know (left-out annotators, unproven D = 2 optima).
    aligned_with
        Whose concepts the aligned xNN's X-features carry (None: not aligned).
    """

    coverage: pd.DataFrame
    purity: pd.DataFrame
    named_by: pd.DataFrame
    reliability: pd.DataFrame
    agreement: pd.DataFrame
    matchings: pd.DataFrame
    compatibility: pd.DataFrame
    name_pairs: pd.DataFrame
    summaries: pd.DataFrame
    dropped: pd.DataFrame
    agreement_summary: pd.DataFrame
    compatibility_summary: pd.DataFrame
    gallery: pd.DataFrame
    explanation_examples: pd.DataFrame
    distrust: pd.DataFrame
    distrust_decisions: pd.DataFrame
    carried: pd.DataFrame
    categories: list[CategoryNamings] = field(repr=False)
    activations: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    namings: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    annotator_kinds: dict[str, str] = field(default_factory=dict)
    min_images: int = MIN_IMAGES
    distrust_threshold: float = FLAG_LEVEL
    distrust_words: DistrustWords = field(default_factory=DistrustWords.from_file, repr=False)
    notes: list[str] = field(default_factory=list)
    aligned_with: str | None = None

    TABLES = (
        "coverage",
        "purity",
        "named_by",
        "reliability",
        "agreement",
        "matchings",
        "compatibility",
        "name_pairs",
        "summaries",
        "dropped",
        "agreement_summary",
        "compatibility_summary",
        "gallery",
        "explanation_examples",
        "distrust",
        "distrust_decisions",
        "carried",
    )

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables by file name stem."""
        return {name: getattr(self, name) for name in self.TABLES}


def analyze(
    activations: pd.DataFrame,
    namings: pd.DataFrame,
    *,
    min_images: int = MIN_IMAGES,
    judge: NameJudge | None = None,
    other: bool = False,
    progress: bool = False,
    d2_time_limit: float = D2_TIME_LIMIT,
    d2_max_paths: int = 200_000,
    d2_budget: float | None = None,
    workers: int | None = None,
    distrust_words: DistrustWords | None = None,
    distrust_threshold: float = FLAG_LEVEL,
    carried: Carried | None = None,
    aligned_with: str | None = None,
) -> Results:
    """Compute the paper's measures from an activations table and tidy namings.

    Parameters
    ----------
    activations
        activation_id, image_id, category, x_feature: the universe of significant activations.
    namings
        Tidy namings: annotator, category, activation_id, concept, status.
    min_images
        Concepts covering fewer distinct images (per annotator and category) are dropped.
    judge
        Linguistic compatibility rules; default: the shipped bird-part synonyms.
    other
        Add "other" to explanations of images with unnamed activations.
    progress
        Show a progress bar over categories.
    d2_time_limit, d2_max_paths
        Limits of the exact D = 2 solver per connected component (see
        :func:`analysis.match_d2`); a pair they stop is flagged ``d2_optimal = False``.
    d2_budget
        Seconds of the agreement stage after which D = 2 optima are no longer proven (None:
        no budget); later pairs get the greedy matching, flagged unless trivially optimal.
    workers
        Processes for the agreement stage (None: every core on large inputs); the results do
        not depend on it.
    distrust_words
        Concept names that reject a map as background (default: the shipped list, see
        :class:`analysis.measures.distrust.DistrustWords`).
    distrust_threshold
        Share of distrusted decisions at which a category is flagged (see
        :mod:`analysis.measures.distrust`).
    carried
        Per category, X-feature -> the concept an aligned xNN's X-feature carries (the
        bundle's manifest ``concepts``, :attr:`xnn_training.bundle.io.Bundle.concepts`): adds
        ``carried.csv`` and purity's ``xc_carried``. None or empty: an xNN not aligned.
    aligned_with
        Whose concepts those are (an annotator, or "consensus"; the bundle's
        :attr:`~xnn_training.bundle.io.Bundle.aligned_with`), for the report.

    Returns
    -------
    Results

    Raises
    ------
    ValueError
        Malformed inputs, with what is wrong and where.
    """
    if not 0.0 <= distrust_threshold <= 1.0:
        raise ValueError(
            f"distrust_threshold must be in [0, 1] (a share of decisions); got {distrust_threshold}"
        )
    activations = check_activations(activations)
    namings = check_namings(namings, activations)
    simulated = _annotators_made_by(namings, SIMULATED)
    machine = _annotators_made_by(namings, MACHINE)
    namings, dropped = drop_small_concepts(namings, activations, min_images=min_images)
    categories = category_namings(activations, namings)
    notes = _participation_notes(categories)
    if simulated:
        notes.insert(
            0,
            f"Simulated namings: {', '.join(simulated)} are simulated annotators "
            "(xnaming simulate), not people.",
        )
    if machine:
        notes.insert(
            0,
            f"Machine namings: {', '.join(machine)} are made by a machine (xnaming discover), "
            "not people.",
        )
    agreement_table, matchings = agreement_tables(
        categories,
        progress=progress,
        d2_budget=d2_budget,
        workers=workers,
        time_limit=d2_time_limit,
        max_paths=d2_max_paths,
    )
    judge = judge or NameJudge.from_files()
    compat = compatibility_table(matchings, agreement_table, judge=judge)
    unproven = int((~agreement_table["d2_optimal"].astype(bool)).sum())
    if unproven:
        notes.append(
            f"{unproven} of {len(agreement_table)} pairs: the D = 2 optimum is not proven "
            "(a size or time limit); agreement_d2 is a lower bound and agreement_d2_bound an "
            "upper bound"
        )
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    spread = _spread_by_d(compat)
    distrust_words = distrust_words or DistrustWords.from_file()
    decisions = decision_table(categories, namings, activations, words=distrust_words)
    return Results(
        coverage=coverage_table(categories),
        purity=purity_table(categories, carried=carried),
        named_by=named_by_table(categories),
        reliability=reliability_table(categories),
        agreement=agreement_table,
        matchings=matchings,
        compatibility=compat,
        name_pairs=name_pair_table(matchings, judge=judge),
        summaries=summary_table(categories, other=other),
        dropped=dropped,
        agreement_summary=summarize_pairs(agreement_table, AGREEMENT_MEASURES),
        compatibility_summary=summarize_pairs(spread, COMPATIBILITY_MEASURES),
        gallery=gallery_table(categories, namings, activations),
        explanation_examples=explanation_examples(categories, activations, other=other),
        distrust=distrust_table(decisions, threshold=distrust_threshold),
        distrust_decisions=decisions,
        carried=carried_table(categories, carried or {}),
        aligned_with=aligned_with if carried else None,
        categories=categories,
        activations=activations,
        namings=namings,
        annotator_kinds=_annotator_kinds(namings),
        min_images=min_images,
        distrust_threshold=distrust_threshold,
        distrust_words=distrust_words,
        notes=notes,
    )


def _annotator_kinds(namings: pd.DataFrame) -> dict[str, str]:
    """Annotator -> who made their rows: "person", "simulated" or "machine" (``made_by``)."""
    kinds = dict.fromkeys(sorted(namings["annotator"].unique()), PERSON)
    for made_by in (SIMULATED, MACHINE):
        for annotator in _annotators_made_by(namings, made_by):
            kinds[annotator] = made_by
    return kinds


def _annotators_made_by(namings: pd.DataFrame, made_by: str) -> list[str]:
    """Annotators whose rows are marked as made by ``made_by`` (the optional ``made_by``
    column; ``check_namings`` derives it from the older ``simulated`` column too)."""
    if MADE_BY not in namings.columns:
        return []
    return sorted(namings.loc[namings[MADE_BY] == made_by, "annotator"].unique())


def _spread_by_d(compat: pd.DataFrame) -> pd.DataFrame:
    """compatibility.csv with one column per measure and d (exact_d1, ...), one row per pair."""
    columns = ["category", "annotator_a", "annotator_b", *COMPATIBILITY_MEASURES]
    if compat.empty:
        return pd.DataFrame(columns=columns)
    spread = compat.pivot_table(
        index=["category", "annotator_a", "annotator_b"],
        columns="d",
        values=["exact", "subset"],
        dropna=False,
    )
    spread.columns = [f"{measure}_d{d}" for measure, d in spread.columns]
    return spread.reset_index().reindex(columns=columns)


def _participation_notes(categories: list[CategoryNamings]) -> list[str]:
    everyone = sorted({a for cat in categories for a in cat.annotators})
    notes = []
    for cat in categories:
        absent = [a for a in everyone if a not in cat.annotators]
        if absent:
            notes.append(
                f"category {cat.category!r}: no namings from {', '.join(absent)}; "
                "they are left out of its tables"
            )
    return notes
