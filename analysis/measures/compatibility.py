"""Linguistic compatibility of matched concepts (the paper's Table 6).

For each pair of annotators and d, over the edges inside the sets of the best D-family
matching: the weight of the edges whose two names are compatible / the weight of all of them.

- exact: the names mean the same: equal after normalisation (case, punctuation, plurals,
  word order, the filler words "and", "of", "the", ...), or synonyms (a shipped list of bird
  parts, ``analysis/data/synonyms.csv``, plus the user's own);
- subset: the words of one name are contained in the other's ("wing" / "open wing",
  "wing" / "wing and eye"). Exact compatibility counts as subset compatibility too, so
  subset >= exact, as in the paper's table.

A user's CSV of judgements (name_a, name_b, compatibility in exact / subset / none) overrides
the rules for the pairs it lists, in either order. Names generated for groups left without a
name ("group 3") carry no words of the annotator: they are compatible with nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "COMPATIBILITY_COLUMNS",
    "JUDGEMENTS",
    "NAME_PAIR_COLUMNS",
    "NameJudge",
    "compatibility_table",
    "name_pair_table",
    "normalize_name",
]

COMPATIBILITY_COLUMNS = [
    "category",
    "annotator_a",
    "annotator_b",
    "d",
    "exact",
    "subset",
    "matched_weight",
]
NAME_PAIR_COLUMNS = ["name_a", "name_b", "compatibility", "weight"]
JUDGEMENTS = ("exact", "subset", "none")

_FILLER = frozenset({"a", "an", "and", "the", "of", "with", "its", "on", "in", "at", "or"})
_IRREGULAR = {"feet": "foot", "teeth": "tooth", "geese": "goose"}
_GENERATED = re.compile(r"^\s*group\s*\d+\s*$", re.IGNORECASE)


def _singular(word: str) -> str:
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@lru_cache(maxsize=65536)
def normalize_name(name: str) -> tuple[str, ...]:
    """The words of a name, lower-cased, singular, without punctuation or filler, sorted.

    >>> normalize_name("Wing and Eyes")
    ('eye', 'wing')
    """
    words = re.sub(r"[^0-9a-z]+", " ", str(name).lower()).split()
    return tuple(sorted({_singular(w) for w in words if w not in _FILLER}))


def _read_pairs(path: str | Path, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path}: a {what} file needs the columns {', '.join(columns)}; missing {missing}"
        )
    return frame


@dataclass
class NameJudge:
    """Decides whether two concept names are exactly, subset or not compatible.

    Parameters
    ----------
    synonyms
        Pairs of names that mean the same (both directions; chains join: beak = bill = nose).
    judgements
        ``{(name_a, name_b): "exact" | "subset" | "none"}``, overriding the rules (either order).
    """

    synonyms: Iterable[tuple[str, str]] = ()
    judgements: dict[tuple[str, str], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parent: dict[tuple[str, ...], tuple[str, ...]] = {}

        def find(x: tuple[str, ...]) -> tuple[str, ...]:
            while parent.setdefault(x, x) != x:
                x = parent[x]
            return x

        for a, b in self.synonyms:
            ra, rb = find(normalize_name(a)), find(normalize_name(b))
            if ra != rb:
                # The shorter, then alphabetically first, name represents the group.
                keep, other = sorted([ra, rb], key=lambda t: (len(t), t))
                parent[other] = keep
        groups = {key: find(key) for key in parent}
        self._phrase = {k: v for k, v in groups.items() if k != v}
        self._word = {k[0]: v[0] for k, v in self._phrase.items() if len(k) == 1 and len(v) == 1}
        overrides = {}
        for (a, b), verdict in self.judgements.items():
            if verdict not in JUDGEMENTS:
                raise ValueError(
                    f"judgement for ({a!r}, {b!r}) must be one of {', '.join(JUDGEMENTS)}, "
                    f"got {verdict!r}"
                )
            overrides[frozenset([normalize_name(a), normalize_name(b)])] = verdict
        self._overrides = overrides

    @classmethod
    def from_files(
        cls,
        *,
        synonyms: str | Path | None = None,
        judgements: str | Path | None = None,
        shipped_synonyms: bool = True,
    ) -> NameJudge:
        """Build from CSV files: synonyms (name, synonym) and judgements (name_a, name_b,
        compatibility). The shipped bird-part synonyms are included unless told otherwise."""
        pairs: list[tuple[str, str]] = []
        sources = []
        if shipped_synonyms:
            sources.append(files("analysis") / "data" / "synonyms.csv")
        if synonyms is not None:
            sources.append(synonyms)
        for source in sources:
            frame = _read_pairs(source, ("name", "synonym"), "synonyms")
            pairs.extend(zip(frame["name"], frame["synonym"], strict=True))
        verdicts: dict[tuple[str, str], str] = {}
        if judgements is not None:
            frame = _read_pairs(judgements, ("name_a", "name_b", "compatibility"), "judgements")
            for i, (a, b, v) in enumerate(
                zip(frame["name_a"], frame["name_b"], frame["compatibility"], strict=True)
            ):
                v = v.strip().lower()
                if v not in JUDGEMENTS:
                    raise ValueError(
                        f"{judgements}: row {i + 2}: compatibility must be one of "
                        f"{', '.join(JUDGEMENTS)}, got {v!r}"
                    )
                verdicts[(a, b)] = v
        return cls(pairs, verdicts)

    def canonical(self, name: str) -> frozenset[str]:
        """The name's words after normalisation and synonyms."""
        words = normalize_name(name)
        if words in self._phrase:
            return frozenset(self._phrase[words])
        return frozenset(self._word.get(w, w) for w in words)

    def judge(self, name_a: str, name_b: str) -> str:
        """ "exact", "subset" or "none" for two concept names."""
        override = self._overrides.get(frozenset([normalize_name(name_a), normalize_name(name_b)]))
        if override is not None:
            return override
        if _GENERATED.match(str(name_a)) or _GENERATED.match(str(name_b)):
            return "none"
        a, b = self.canonical(name_a), self.canonical(name_b)
        if not a or not b:
            return "none"
        if a == b:
            return "exact"
        if a <= b or b <= a:
            return "subset"
        return "none"


def _judged(matchings: pd.DataFrame, judge: NameJudge) -> pd.Series:
    cache: dict[tuple[str, str], str] = {}
    verdicts = []
    for a, b in zip(matchings["concept_a"], matchings["concept_b"], strict=True):
        if (a, b) not in cache:
            cache[(a, b)] = judge.judge(a, b)
        verdicts.append(cache[(a, b)])
    return pd.Series(verdicts, index=matchings.index, dtype=object)


def compatibility_table(
    matchings: pd.DataFrame, pairs: pd.DataFrame, *, judge: NameJudge | None = None
) -> pd.DataFrame:
    """compatibility.csv: per category, pair and d, the compatible share of matched weight.

    Parameters
    ----------
    matchings
        matchings.csv (see :func:`analysis.agreement_tables`).
    pairs
        The pairs to report (category, annotator_a, annotator_b), e.g. agreement.csv; a pair
        with no matched edge gets NaN.
    judge
        Decides compatibility; default: the shipped synonyms, no judgements.
    """
    judge = judge or NameJudge.from_files()
    key = ["category", "annotator_a", "annotator_b", "d"]
    if pairs.empty:
        return pd.DataFrame(columns=COMPATIBILITY_COLUMNS)
    edges = matchings.assign(verdict=_judged(matchings, judge))
    weight = edges["weight"].to_numpy(dtype=float)
    edges = edges.assign(
        exact_w=np.where(edges["verdict"] == "exact", weight, 0.0),
        subset_w=np.where(edges["verdict"] != "none", weight, 0.0),
    )
    sums = edges.groupby(key, sort=False)[["weight", "exact_w", "subset_w"]].sum()
    frame = pairs.loc[:, key[:3]].drop_duplicates()
    frame = pd.concat([frame.assign(d=d) for d in (1, 2)], ignore_index=True)
    frame = frame.merge(sums.reset_index(), on=key, how="left")
    total = pd.to_numeric(frame["weight"]).fillna(0.0).to_numpy(dtype=float)
    has_edges = total > 0
    for measure, column in (("exact", "exact_w"), ("subset", "subset_w")):
        values = pd.to_numeric(frame[column]).fillna(0.0).to_numpy(dtype=float)
        frame[measure] = np.divide(values, total, out=np.full(len(frame), np.nan), where=has_edges)
    frame["matched_weight"] = total.astype(int)
    return (
        frame.sort_values(key, kind="stable").loc[:, COMPATIBILITY_COLUMNS].reset_index(drop=True)
    )


def name_pair_table(matchings: pd.DataFrame, *, judge: NameJudge | None = None) -> pd.DataFrame:
    """name_pairs.csv: every distinct pair of matched names, its verdict and total weight.

    It has the columns of a judgements file: edit the verdicts and pass it back with
    ``--judgements`` to override the rules.
    """
    judge = judge or NameJudge.from_files()
    edges = matchings.assign(verdict=_judged(matchings, judge))
    table = (
        edges.groupby(["concept_a", "concept_b", "verdict"], sort=True)["weight"]
        .sum()
        .reset_index()
        .rename(columns={"concept_a": "name_a", "concept_b": "name_b", "verdict": "compatibility"})
    )
    return table.sort_values("weight", ascending=False, kind="stable").reset_index(drop=True)
