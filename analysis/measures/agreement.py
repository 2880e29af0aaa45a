"""RQ3: agreement between the namings of every pair of annotators (the paper's Table 5).

Per category and pair (a, b), on the activations both named:

- jaccard: |A_a & A_b| / |A_a | A_b| of the named sets;
- agreement_d1, agreement_d2: weight of the best D-family matching of the intersection graph
  (see :mod:`analysis.measures.matching`) / activations both named; ``d2_optimal`` is False when a
  size
  or time limit stopped the proof, and ``agreement_d2_bound`` then bounds it from above;
- ari, nmi: adjusted Rand index and normalised mutual information (arithmetic mean),
  chance-corrected context the paper lacks. They are computed from the intersection graph's
  weights (which are the contingency table), with scikit-learn's formulas and edge cases
  (tests compare them with ``sklearn.metrics`` on random labelings); calling scikit-learn per
  pair would re-validate the labels and dominate the run time at scale;
- alpha_named: Krippendorff's alpha on the pair's named / not-named answers.

Measures over no activations are NaN. The matchings themselves (which concepts form a set)
come back as a second table, for Figure 7 and the linguistic compatibility.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from itertools import combinations

import numpy as np
import pandas as pd

from analysis.measures.labels import CategoryNamings
from analysis.measures.matching import intersection_graph, match_d1, match_d2
from analysis.measures.named_by import named_alpha

__all__ = [
    "AGREEMENT_COLUMNS",
    "MATCHING_COLUMNS",
    "adjusted_rand",
    "agreement_tables",
    "normalized_mutual_info",
    "pair_agreement",
]

PARALLEL_PAIRS = 2_000
"""From this many annotator pairs on, the categories are shared among processes by default."""

AGREEMENT_COLUMNS = [
    "category",
    "annotator_a",
    "annotator_b",
    "named_a",
    "named_b",
    "both_named",
    "jaccard",
    "agreement_d1",
    "agreement_d2",
    "d2_optimal",
    "ari",
    "nmi",
    "agreement_d2_bound",
    "alpha_named",
]
MATCHING_COLUMNS = [
    "category",
    "annotator_a",
    "annotator_b",
    "d",
    "set",
    "concept_a",
    "concept_b",
    "weight",
]


def adjusted_rand(contingency: np.ndarray) -> float:
    """Adjusted Rand index from a contingency table (as ``sklearn.metrics.adjusted_rand_score``).

    Parameters
    ----------
    contingency
        Counts of items per (cluster of a, cluster of b).
    """
    c = np.asarray(contingency, dtype=np.int64)
    n = int(c.sum())
    sum_squares = int((c**2).sum())
    n_a, n_b = c.sum(axis=1), c.sum(axis=0)
    tp = sum_squares - n
    fp = int((c @ n_b).sum()) - sum_squares
    fn = int((c.T @ n_a).sum()) - sum_squares
    tn = n * n - fp - fn - sum_squares
    if fn == 0 and fp == 0:  # full agreement, or no data: sklearn's convention
        return 1.0
    return float(2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)))


def normalized_mutual_info(contingency: np.ndarray) -> float:
    """NMI with arithmetic-mean normalisation from a contingency table (as
    ``sklearn.metrics.normalized_mutual_info_score``)."""
    c = np.asarray(contingency, dtype=float)
    c = c[c.sum(axis=1) > 0][:, c.sum(axis=0) > 0]
    if c.shape[0] == c.shape[1] <= 1:  # one cluster each (or none): a perfect match
        return 1.0
    n = c.sum()
    p_a, p_b = c.sum(axis=1) / n, c.sum(axis=0) / n
    nz = c > 0
    p = c[nz] / n
    outer = np.outer(p_a, p_b)[nz]
    mi = max(float((p * (np.log(p) - np.log(outer))).sum()), 0.0)
    if mi == 0.0:
        return 0.0
    h_a = float(-(p_a * np.log(p_a)).sum())
    h_b = float(-(p_b * np.log(p_b)).sum())
    return mi / max((h_a + h_b) / 2, np.finfo(float).eps)


def pair_agreement(
    labels_a: np.ndarray,
    labels_b: np.ndarray,
    n_a: int,
    n_b: int,
    **limits: float,
) -> tuple[dict[str, float], dict[object, object]]:
    """Agreement measures of two namings of the same activations.

    Parameters
    ----------
    labels_a, labels_b
        Concept codes per activation, -1 where not named.
    n_a, n_b
        Number of concepts of each annotator.
    **limits
        Passed to :func:`analysis.match_d2` (``time_limit``, ``max_paths``, ``exact``).

    Returns
    -------
    (measures, matchings)
        The measures of :data:`AGREEMENT_COLUMNS` (from named_a on), and a dict holding the
        :class:`analysis.Matching` for d = 1 and d = 2 and, under "weights", the intersection
        graph.
    """
    labels_a = np.asarray(labels_a)
    labels_b = np.asarray(labels_b)
    named_a, named_b = labels_a >= 0, labels_b >= 0
    both = named_a & named_b
    n_both = int(both.sum())
    union = int((named_a | named_b).sum())
    weights = intersection_graph(labels_a, labels_b, n_a, n_b)
    d1, d2 = match_d1(weights), match_d2(weights, **limits)
    nan = float("nan")
    measures = {
        "named_a": int(named_a.sum()),
        "named_b": int(named_b.sum()),
        "both_named": n_both,
        "jaccard": n_both / union if union else nan,
        "agreement_d1": d1.weight / n_both if n_both else nan,
        "agreement_d2": d2.weight / n_both if n_both else nan,
        "d2_optimal": bool(d2.optimal),
        "ari": adjusted_rand(weights) if n_both else nan,
        "nmi": normalized_mutual_info(weights) if n_both else nan,
        "agreement_d2_bound": d2.upper_bound / n_both if n_both else nan,
        "alpha_named": named_alpha(np.vstack([named_a, named_b])),
    }
    return measures, {1: d1, 2: d2, "weights": weights}


def agreement_tables(
    categories: Iterable[CategoryNamings],
    *,
    progress: bool = False,
    d2_budget: float | None = None,
    workers: int | None = None,
    **limits: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """agreement.csv and matchings.csv over every category and pair of annotators.

    Parameters
    ----------
    categories
        From :func:`analysis.category_namings`.
    progress
        Show a progress bar over categories (tqdm).
    d2_budget
        Seconds (wall clock, from the start of this stage) after which D = 2 optima are no
        longer proven: the remaining pairs get the greedy matching, flagged unless trivially
        optimal. None: no budget, every pair exact.
    workers
        Processes that share the categories (they are independent). None: every core when
        there are at least :data:`PARALLEL_PAIRS` pairs, else 1. The result does not depend
        on it.
    **limits
        Passed to :func:`analysis.match_d2`.

    Returns
    -------
    (agreement, matchings)
        One row per category and pair (annotator_a < annotator_b); one row per edge inside a
        set of the best matching, for d = 1 and 2 (``set`` numbers the sets of a matching).
    """
    categories = list(categories)
    pairs = sum(len(cat.annotators) * (len(cat.annotators) - 1) // 2 for cat in categories)
    if workers is None:
        workers = (os.cpu_count() or 1) if pairs >= PARALLEL_PAIRS else 1
    workers = max(1, min(workers, len(categories)))
    deadline = None if d2_budget is None else time.time() + d2_budget
    work = partial(_category_tables, deadline=deadline, limits=limits)
    if workers == 1:
        results = map(work, categories)
        pool = None
    else:
        # fork: the workers inherit the loaded modules, so they start in milliseconds.
        context = multiprocessing.get_context("fork" if os.name == "posix" else None)
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        results = pool.map(work, categories)  # in category order: same tables as serial
    if progress:
        from tqdm import tqdm

        results = tqdm(results, total=len(categories), desc="agreement", unit="category")
    rows: list[dict] = []
    edges: dict[str, list] = {column: [] for column in MATCHING_COLUMNS}
    try:
        for category_rows, category_edges in results:
            rows.extend(category_rows)
            for column, values in category_edges.items():
                edges[column].extend(values)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return (
        pd.DataFrame(rows, columns=AGREEMENT_COLUMNS),
        pd.DataFrame(edges, columns=MATCHING_COLUMNS).astype({"d": int, "set": int, "weight": int}),
    )


def _category_tables(
    cat: CategoryNamings, deadline: float | None, limits: dict
) -> tuple[list[dict], dict[str, list]]:
    """The agreement rows and matching edges of one category (a worker's unit of work)."""
    rows = []
    edges: dict[str, list] = {column: [] for column in MATCHING_COLUMNS}
    for a, b in combinations(range(len(cat.annotators)), 2):
        names_a, names_b = cat.concepts[a], cat.concepts[b]
        key = {
            "category": cat.category,
            "annotator_a": cat.annotators[a],
            "annotator_b": cat.annotators[b],
        }
        exact = deadline is None or time.time() < deadline
        measures, matchings = pair_agreement(
            cat.labels[a], cat.labels[b], len(names_a), len(names_b), exact=exact, **limits
        )
        rows.append(key | measures)
        weights = matchings["weights"]
        for d in (1, 2):
            for s, (side_a, side_b) in enumerate(matchings[d].groups):
                for i in side_a:
                    for j in side_b:
                        for column, value in key.items():
                            edges[column].append(value)
                        edges["d"].append(d)
                        edges["set"].append(s)
                        edges["concept_a"].append(names_a[i])
                        edges["concept_b"].append(names_b[j])
                        edges["weight"].append(int(weights[i, j]))
    return rows, edges
