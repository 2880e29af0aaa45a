"""Namings -> the interactive-naming paper's measures, tables, figures and an HTML report.

The data flow: activations table + tidy namings -> cleaning (small concepts dropped) ->
per-category label arrays -> coverage, purity, named-by, agreement (D-family matchings),
linguistic compatibility, explanation summaries, the concept gallery, explanation examples,
decisions to distrust -> CSV tables, PNG figures, report.html (with the bundle's maps).

>>> from analysis import analyze, write_report
>>> results = analyze(activations, namings, min_images=3)   # doctest: +SKIP
>>> results.agreement.head()                                  # doctest: +SKIP
>>> write_report(results, "out/")                             # doctest: +SKIP
"""

# The public names are imported on first use (PEP 562), so ``import analysis.cli`` (run by
# ``xnaming --help``) does not pull in pandas, scikit-learn and matplotlib.
from importlib import import_module
from typing import Any

_SOURCES = {
    "ANY_ANNOTATOR": "analysis.measures.coverage",
    "CategoryNamings": "analysis.measures.labels",
    "DistrustWords": "analysis.measures.distrust",
    "Matching": "analysis.measures.matching",
    "NameJudge": "analysis.measures.compatibility",
    "Results": "analysis.pipeline",
    "Thumbnails": "analysis.report.thumbnails",
    "agreement_tables": "analysis.measures.agreement",
    "analyze": "analysis.pipeline",
    "category_namings": "analysis.measures.labels",
    "check_activations": "analysis.inputs",
    "check_namings": "analysis.inputs",
    "compatibility_table": "analysis.measures.compatibility",
    "coverage_row": "analysis.measures.coverage",
    "coverage_table": "analysis.measures.coverage",
    "cx_xc_purity": "analysis.measures.purity",
    "decision_table": "analysis.measures.distrust",
    "distrust_table": "analysis.measures.distrust",
    "drop_small_concepts": "analysis.measures.cleaning",
    "explanation_examples": "analysis.report.explanation_images",
    "explanations": "analysis.measures.summaries",
    "gallery_table": "analysis.report.gallery",
    "intersection_graph": "analysis.measures.matching",
    "load_namings": "analysis.inputs",
    "match_d1": "analysis.measures.matching",
    "match_d2": "analysis.measures.matching",
    "match_d_family": "analysis.measures.matching",
    "name_pair_table": "analysis.measures.compatibility",
    "named_alpha": "analysis.measures.named_by",
    "named_by_table": "analysis.measures.named_by",
    "normalize_name": "analysis.measures.compatibility",
    "pair_agreement": "analysis.measures.agreement",
    "purity_table": "analysis.measures.purity",
    "read_activations": "analysis.inputs",
    "read_namings_csv": "analysis.inputs",
    "reliability_table": "analysis.measures.named_by",
    "summarize_pairs": "analysis.measures.pair_stats",
    "summary_table": "analysis.measures.summaries",
    "write_report": "analysis.report.writer",
}

__all__ = [
    "ANY_ANNOTATOR",
    "CategoryNamings",
    "DistrustWords",
    "Matching",
    "NameJudge",
    "Results",
    "Thumbnails",
    "agreement_tables",
    "analyze",
    "category_namings",
    "check_activations",
    "check_namings",
    "compatibility_table",
    "coverage_row",
    "coverage_table",
    "cx_xc_purity",
    "decision_table",
    "distrust_table",
    "drop_small_concepts",
    "explanation_examples",
    "explanations",
    "gallery_table",
    "intersection_graph",
    "load_namings",
    "match_d1",
    "match_d2",
    "match_d_family",
    "name_pair_table",
    "named_alpha",
    "named_by_table",
    "normalize_name",
    "pair_agreement",
    "purity_table",
    "read_activations",
    "read_namings_csv",
    "reliability_table",
    "summarize_pairs",
    "summary_table",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name not in _SOURCES:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    value = getattr(import_module(_SOURCES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
