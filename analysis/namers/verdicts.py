"""What each judged map was called: by one annotator, or by the consensus of all of them.

:func:`concept_verdicts` turns a namings table (docs/formats.md) into one verdict per map, a
concept or ``""`` (left unnamed or discarded). The consensus reads every annotator's words as
the most active annotator's through the D = 1 matching of
:mod:`analysis.measures.matching`, so "bill" and "beak" vote together. The alignment
(``xnaming train xnn --namings``) and the learnt namer of ``xnaming why --namings``
(:mod:`analysis.namers.learnt`) train on these verdicts.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from analysis.measures.matching import intersection_graph, match_d1
from label_config import NAMED

__all__ = ["concept_verdicts"]


def concept_verdicts(table: pd.DataFrame, annotator: str | None = None) -> pd.Series:
    """Each judged activation's concept ('' for unnamed or discarded), by one annotator or by
    the consensus of all.

    The consensus, per category: the annotator who named the most maps is the reference; every
    other annotator's concepts are matched one to one with the reference's (the D = 1 matching
    of :mod:`analysis.measures.matching`, by shared maps) and read as the reference's words
    (an unmatched concept as unnamed); each map then takes its most frequent verdict, ties to
    the reference's.

    Raises
    ------
    ValueError
        ``annotator`` did not judge any map of the table (the annotators who did are named).
    """
    table = table.fillna("")
    verdict = table["concept"].where(table["status"] == NAMED, "")
    judged = table.assign(verdict=verdict)
    if annotator is not None:
        mine = judged[judged["annotator"] == annotator]
        if mine.empty:
            known = ", ".join(sorted(judged["annotator"].unique()))
            raise ValueError(f"--annotator: {annotator!r} judged no map here (annotators: {known})")
        return mine.set_index("activation_id")["verdict"]
    out: dict[str, str] = {}
    for _, rows in judged.groupby("category", sort=True):
        named = rows[rows["verdict"] != ""]
        if named.empty:
            out |= dict.fromkeys(rows["activation_id"], "")
            continue
        reference = named["annotator"].value_counts().sort_index().idxmax()
        votes: dict[str, list[str]] = {}
        ours = rows[rows["annotator"] == reference].set_index("activation_id")["verdict"]
        for _, theirs in rows.groupby("annotator", sort=True):
            said = theirs.set_index("activation_id")["verdict"]
            words = _translation(said, ours)
            for activation, word in said.items():
                votes.setdefault(activation, []).append(words.get(word, ""))
        for activation, said in votes.items():
            counts = Counter(said).most_common()
            best = [word for word, n in counts if n == counts[0][1]]
            out[activation] = ours.get(activation, best[0]) if len(best) > 1 else best[0]
    return pd.Series(out, name="verdict").rename_axis("activation_id")


def _translation(theirs: pd.Series, ours: pd.Series) -> dict[str, str]:
    """Their concept -> our concept, by the D = 1 matching on the maps both named."""
    both = theirs.index.intersection(ours.index)
    a, b = theirs.loc[both], ours.loc[both]
    keep = (a != "") & (b != "")
    if not keep.any():  # no map named by both: none of their words matches ours
        return {"": ""}
    a_names, b_names = sorted(set(a[keep])), sorted(set(b[keep]))
    codes_a = a[keep].map({n: i for i, n in enumerate(a_names)}).to_numpy()
    codes_b = b[keep].map({n: i for i, n in enumerate(b_names)}).to_numpy()
    graph = intersection_graph(codes_a, codes_b, len(a_names), len(b_names))
    return {a_names[rows[0]]: b_names[cols[0]] for rows, cols in match_d1(graph).groups} | {"": ""}
