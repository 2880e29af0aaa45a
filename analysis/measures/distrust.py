"""Decisions to distrust: test decisions whose evidence annotators reject.

The paper's purpose is to "identify example types for which the classifier may not be
trusted": a decision resting on maps that fall on the background or on noise may be right for
the wrong reason. For each significant map, each annotator of its category gives one verdict:

- **rejected**: discarded, or named with a background word (:class:`DistrustWords`:
  "background", "sky", "non bird", ...);
- **named**: named with any other word;
- **unnamed**: left unsorted or not seen: the annotator abstains. Most unnamed maps are hot
  spots that straddle two parts (about a third of all maps on toybirds), not noise.

A map's *distrust* is the share of the annotators who judged it (named or rejected) that
rejected it, smoothed by one imaginary undecided annotator who counts a quarter::

    distrust = (rejected + 0.25) / (rejected + named + 1)

so a map nobody judged has :data:`PRIOR` = 0.25, one that one annotator rejects and nobody
names 0.625, one that two annotators name and nobody rejects 0.08. A decision (one test image,
explained for its class) has as distrust the mean of its significant maps' distrust, weighed by
each map's share of the positive score (equally when the activations table has no ``share``);
it is **distrusted** at :data:`DECISION_LEVEL` = 0.5. Unnamed maps alone (0.25) never make a
decision distrusted; a decision is distrusted when the maps carrying most of it are rejected by
more of the annotators who judged them than name them.

A category's score is the share of its decisions that are distrusted; it is **flagged** at
:data:`FLAG_LEVEL` (0.5, ``--distrust-threshold``): most of its test decisions rest on
evidence that annotators reject. docs/analysis.md gives the figures this threshold was chosen
on (planted shortcuts and ordinary toybirds runs on several seeds).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.defaults import DISTRUST_THRESHOLD
from analysis.inputs import SHARE
from analysis.measures.compatibility import normalize_name
from analysis.measures.labels import CategoryNamings
from label_config import DISCARDED, NAMED

__all__ = [
    "DECISION_COLUMNS",
    "DECISION_LEVEL",
    "DISTRUST_COLUMNS",
    "FLAG_LEVEL",
    "PRIOR",
    "DistrustWords",
    "decision_table",
    "distrust_table",
    "map_verdicts",
]

PRIOR = 0.25
"""The distrust of a map nobody judged; also the vote of the one imaginary annotator."""
DECISION_LEVEL = 0.5
"""A decision whose distrust reaches this is distrusted."""
FLAG_LEVEL = DISTRUST_THRESHOLD
"""A category whose share of distrusted decisions reaches this is flagged."""

DECISION_COLUMNS = [
    "category",
    "image_id",
    "maps",
    "annotators",
    "named_evidence",
    "unnamed_evidence",
    "rejected_evidence",
    "distrust",
    "distrusted",
]
DISTRUST_COLUMNS = [
    "rank",
    "category",
    "annotators",
    "decisions",
    "distrusted",
    "distrusted_share",
    "mean_distrust",
    "rejected_evidence",
    "unnamed_evidence",
    "flagged",
]


def _read_words(source) -> list[str]:
    text = (Path(source) if isinstance(source, str) else source).read_text(encoding="utf-8")
    return [w for w in (line.split("#", 1)[0].strip() for line in text.splitlines()) if w]


@dataclass(frozen=True)
class DistrustWords:
    """The names that say a map shows no part of the object ("background", "non bird", ...).

    A concept name counts when it is made only of entries, compared after
    :func:`analysis.normalize_name` (lower case, singular, no punctuation or filler, any word
    order); an entry of several words ("non bird") counts as one word. So "sky", "corner
    mark" and "Background noise" count; "wing edge" and "bird on branch" do not.

    Parameters
    ----------
    entries
        The words and phrases.
    """

    entries: Sequence[str]
    _single: frozenset[str] = field(init=False, repr=False)
    _multi: tuple[frozenset[str], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        phrases = {normalize_name(e) for e in self.entries} - {()}
        object.__setattr__(self, "_single", frozenset(p[0] for p in phrases if len(p) == 1))
        object.__setattr__(self, "_multi", tuple(frozenset(p) for p in phrases if len(p) > 1))

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> DistrustWords:
        """Read one entry a line (``#`` comments); None: the shipped list
        (``analysis/data/distrust_words.txt``)."""
        source = files("analysis") / "data" / "distrust_words.txt" if path is None else path
        try:
            return cls(_read_words(source))
        except FileNotFoundError:
            raise FileNotFoundError(
                f"--distrust-words: {path} not found; give a text file with one word a line"
            ) from None

    def __contains__(self, name: object) -> bool:
        words = set(normalize_name(str(name)))
        if not words:
            return False
        for phrase in self._multi:
            if phrase <= words:
                words -= phrase
        return words <= self._single


def map_verdicts(
    categories: Iterable[CategoryNamings],
    namings: pd.DataFrame,
    activations: pd.DataFrame,
    words: DistrustWords,
) -> pd.DataFrame:
    """Per activation: the activations table plus ``named``, ``rejected``, ``unnamed`` (how
    many of its category's annotators gave each verdict) and ``annotators``."""
    annotators = {c.category: len(c.annotators) for c in categories}
    named = namings["status"] == NAMED
    concepts = namings.loc[named, "concept"].unique()
    background = {c for c in concepts if c in words}
    rejected = (namings["status"] == DISCARDED) | (named & namings["concept"].isin(background))
    counts = (
        pd.DataFrame(
            {
                "activation_id": namings["activation_id"],
                "named": named & ~rejected,
                "rejected": rejected,
            }
        )
        .groupby("activation_id", sort=False)[["named", "rejected"]]
        .sum()
    )
    table = activations.join(counts, on="activation_id")
    table[["named", "rejected"]] = table[["named", "rejected"]].fillna(0).astype(int)
    table["annotators"] = table["category"].map(annotators).fillna(0).astype(int)
    table["unnamed"] = table["annotators"] - table["named"] - table["rejected"]
    return table


def decision_table(
    categories: Sequence[CategoryNamings],
    namings: pd.DataFrame,
    activations: pd.DataFrame,
    *,
    words: DistrustWords | None = None,
) -> pd.DataFrame:
    """distrust_decisions.csv: per test decision (image), how much of its evidence is distrusted.

    Parameters
    ----------
    categories
        From :func:`analysis.category_namings` (who takes part in each category).
    namings
        The checked, cleaned tidy namings (statuses tell discarded from unnamed).
    activations
        The checked activations table; its ``share`` column weighs the maps when present.
    words
        Background names; default: the shipped list.

    Returns
    -------
    pandas.DataFrame
        :data:`DECISION_COLUMNS`, one row per image: ``named_evidence``,
        ``unnamed_evidence``, ``rejected_evidence`` (share-weighted fractions of the
        annotators' verdicts, summing to 1), ``distrust`` (the share-weighted mean of its
        maps' distrust, see the module's docstring) and ``distrusted`` (distrust >=
        :data:`DECISION_LEVEL`). NaN and False in a category nobody named.
    """
    words = words or DistrustWords.from_file()
    table = map_verdicts(categories, namings, activations, words)
    weight = table[SHARE] if SHARE in table.columns else pd.Series(1.0, index=table.index)
    # An image whose maps all have share 0 (cannot happen in a bundle): weigh them equally.
    total = weight.groupby(table["image_id"]).transform("sum")
    weight = weight.where(total > 0, 1.0)
    n = table["annotators"].where(table["annotators"] > 0)
    for verdict in ("named", "unnamed", "rejected"):
        table[f"{verdict}_w"] = weight * table[verdict] / n
    distrust = (table["rejected"] + PRIOR) / (table["rejected"] + table["named"] + 1)
    table["distrust_w"] = weight * distrust.where(n.notna())
    table["w"] = weight
    grouped = table.groupby(["category", "image_id"], sort=True)
    sums = grouped[["named_w", "unnamed_w", "rejected_w", "distrust_w", "w"]].sum(min_count=1)
    result = pd.DataFrame(
        {
            "maps": grouped.size(),
            "annotators": grouped["annotators"].first(),
            "named_evidence": sums["named_w"] / sums["w"],
            "unnamed_evidence": sums["unnamed_w"] / sums["w"],
            "rejected_evidence": sums["rejected_w"] / sums["w"],
            "distrust": sums["distrust_w"] / sums["w"],
        }
    ).reset_index()
    result["distrusted"] = (result["distrust"] >= DECISION_LEVEL - 1e-12).fillna(False)
    return result.loc[:, DECISION_COLUMNS]


def distrust_table(decisions: pd.DataFrame, *, threshold: float = FLAG_LEVEL) -> pd.DataFrame:
    """distrust.csv: categories ranked by the share of their decisions that are distrusted.

    Parameters
    ----------
    decisions
        From :func:`decision_table`.
    threshold
        A category is flagged when its share of distrusted decisions reaches this.

    Returns
    -------
    pandas.DataFrame
        :data:`DISTRUST_COLUMNS`, ranked by ``distrusted_share``, then ``mean_distrust``
        (both descending), then name; categories nobody named come last with NaN.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1] (a share of decisions); got {threshold}")
    if decisions.empty:
        return pd.DataFrame(columns=DISTRUST_COLUMNS)
    grouped = decisions.groupby("category", sort=True)
    table = pd.DataFrame(
        {
            "annotators": grouped["annotators"].first(),
            "decisions": grouped.size(),
            "distrusted": grouped["distrusted"].sum().astype(int),
            "mean_distrust": grouped["distrust"].mean(),
            "rejected_evidence": grouped["rejected_evidence"].mean(),
            "unnamed_evidence": grouped["unnamed_evidence"].mean(),
        }
    ).reset_index()
    table["distrusted_share"] = (table["distrusted"] / table["decisions"]).where(
        table["annotators"] > 0
    )
    table["flagged"] = (table["distrusted_share"] >= threshold - 1e-12).fillna(False)
    table = table.sort_values(
        ["distrusted_share", "mean_distrust", "category"],
        ascending=[False, False, True],
        na_position="last",
        kind="stable",
    )
    table["rank"] = np.arange(1, len(table) + 1)
    return table.loc[:, DISTRUST_COLUMNS].reset_index(drop=True)
