"""Writing the analysis: the CSV tables, the PNG figures and one self-contained report.html.

report.html embeds its figures as base64 PNG and its style inline, so it can be mailed or
archived alone. Names typed by annotators are HTML-escaped.
"""

from __future__ import annotations

import base64
import html
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from analysis.coverage import ANY_ANNOTATOR
from analysis.pipeline import AGREEMENT_MEASURES, COMPATIBILITY_MEASURES, Results

__all__ = ["FIGURES", "choose_pair", "write_report"]

FIGURES = {
    "coverage_activations": "Figure 3: fraction of significant activations named",
    "coverage_partial": "Figure 4: partial explanation coverage",
    "coverage_complete": "Figure 5: complete explanation coverage",
    "named_by": "Figure 6: activations named by exactly n annotators",
    "matching": "Figure 7: matchings between two annotators' concepts",
}
HTML_CATEGORIES = 50
"""Tables in report.html show at most this many categories; the CSV files hold all."""
TOP_EXPLANATIONS = 8

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
td.text { text-align: left; } img { max-width: 100%; }
.note { background: #fff6d9; border-left: 4px solid #e0b000; padding: 0.4em 0.8em; }
.muted { color: #666; font-size: 0.9em; }
"""


def choose_pair(results: Results) -> tuple[str, str, str] | None:
    """The default pair for Figure 7: the first category's first pair of annotators."""
    if results.agreement.empty:
        return None
    first = results.agreement.iloc[0]
    return str(first["category"]), str(first["annotator_a"]), str(first["annotator_b"])


def write_report(
    results: Results,
    out_dir: str | Path,
    *,
    figures: bool = True,
    pair: tuple[str, str, str] | None = None,
) -> Path:
    """Write every table as CSV, the figures as PNG and report.html into ``out_dir``.

    Parameters
    ----------
    results
        From :func:`analysis.analyze`.
    out_dir
        Created if missing; existing files of the same names are replaced, and figures of
        an earlier run that this one does not draw are removed.
    figures
        Draw the figures (PNG files and in the report); False for tables only (fast).
    pair
        (category, annotator_a, annotator_b) for Figure 7; default :func:`choose_pair`.

    Returns
    -------
    pathlib.Path
        The report.html path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, table in results.tables().items():
        table.to_csv(out / f"{name}.csv", index=False)
    pair = pair or choose_pair(results)
    images = _draw(results, pair) if figures else {}
    for name in FIGURES:  # no stale figure of an earlier run may sit beside this report
        (out / f"{name}.png").unlink(missing_ok=True)
    for name, data in images.items():
        (out / f"{name}.png").write_bytes(data)
    path = out / "report.html"
    path.write_text(_html(results, images, pair), encoding="utf-8")
    return path


def _draw(results: Results, pair: tuple[str, str, str] | None) -> dict[str, bytes]:
    from analysis.figures import coverage_figure, matching_figure, named_by_figure, png_bytes

    images = {
        "coverage_activations": png_bytes(
            coverage_figure(results.coverage, measure="activation_coverage")
        ),
        "coverage_partial": png_bytes(
            coverage_figure(results.coverage, measure="partial_coverage")
        ),
        "coverage_complete": png_bytes(
            coverage_figure(results.coverage, measure="complete_coverage")
        ),
        "named_by": png_bytes(named_by_figure(results.named_by)),
    }
    if pair is not None:
        category = next(c for c in results.categories if c.category == pair[0])
        images["matching"] = png_bytes(
            matching_figure(category, pair[1], pair[2], results.matchings)
        )
    return images


def _html_table(frame: pd.DataFrame, fmt) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            css = ' class="text"' if isinstance(value, str) and not value[:1].isdigit() else ""
            cells.append(f"<td{css}>{html.escape(fmt(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _limited(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    categories = sorted(frame["category"].unique()) if "category" in frame else []
    if len(categories) <= HTML_CATEGORIES:
        return frame, ""
    keep = set(categories[:HTML_CATEGORIES])
    note = (
        f'<p class="muted">First {HTML_CATEGORIES} of {len(categories)} categories; '
        "the CSV file holds all.</p>"
    )
    return frame[frame["category"].isin(keep)], note


def _per_annotator(frame: pd.DataFrame, value: str) -> str:
    """Category x annotator table with an average row and column (Tables 2 and 3 layout)."""
    if frame.empty:
        return "<p>No namings.</p>"
    frame, note = _limited(frame)
    table = frame.pivot_table(index="category", columns="annotator", values=value, dropna=False)
    annotators = [c for c in table.columns if c != ANY_ANNOTATOR]
    table["average"] = table[annotators].mean(axis=1)  # over annotators, not "any"
    table.loc["average"] = table.mean(axis=0)
    return note + _html_table(table.reset_index(), lambda v: _fmt(v))


def _fmt(value: object, digits: int = 2) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.{digits}f}"
    return str(value)


def _pair_summary(summary: pd.DataFrame, measures: list[str]) -> str:
    """Table 5 / 6 layout: per category, min, mean ± std and max of each measure."""
    if summary.empty:
        return "<p>No pairs of annotators.</p>"
    summary, note = _limited(summary)
    rows = []
    for category, group in summary.groupby("category", sort=True):
        stats = group.set_index("measure")
        for label in ("min", "average", "max"):
            row = {"category": category if label == "min" else "", "": label}
            for m in measures:
                s = stats.loc[m]
                if label == "average":
                    row[m] = (
                        ""
                        if pd.isna(s["mean"])
                        else (
                            f"{s['mean']:.2f}" + ("" if pd.isna(s["std"]) else f" ± {s['std']:.2f}")
                        )
                    )
                else:
                    row[m] = _fmt(s["min" if label == "min" else "max"])
            rows.append(row)
    means = summary.groupby("measure")["mean"].mean()
    rows.append(
        {"category": "global average", "": ""}
        | {m: _fmt(means.get(m, float("nan"))) for m in measures}
    )
    return note + _html_table(pd.DataFrame(rows), str)


def _explanations(summaries: pd.DataFrame) -> str:
    """Table 4 layout: per category and annotator, the most frequent explanations."""
    if summaries.empty:
        return "<p>No namings.</p>"
    summaries, note = _limited(summaries)
    rows = []
    for (category, annotator), group in summaries.groupby(["category", "annotator"], sort=True):
        top = group.head(TOP_EXPLANATIONS)
        text = ", ".join(
            f"({e}) {100 * f:.1f}%"
            for e, f in zip(top["explanation"], top["fraction"], strict=True)
        )
        if len(group) > TOP_EXPLANATIONS:
            text += f", … {len(group) - TOP_EXPLANATIONS} more"
        rows.append({"category": category, "annotator": annotator, "explanations": text})
    return note + _html_table(pd.DataFrame(rows), str)


def _figure(images: dict[str, bytes], name: str) -> str:
    if name not in images:
        return ""
    data = base64.b64encode(images[name]).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(FIGURES[name])}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(FIGURES[name])}</figcaption></figure>"
    )


def _html(results: Results, images: dict[str, bytes], pair: tuple[str, str, str] | None) -> str:
    r = results
    annotators = sorted(set(r.coverage["annotator"]) - {ANY_ANNOTATOR})
    n_acts = int(r.coverage.loc[r.coverage["annotator"] == ANY_ANNOTATOR, "activations"].sum())
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in r.notes)
    dropped = (
        f"<details><summary>{len(r.dropped)} concept(s) covering fewer than {r.min_images} "
        "images were dropped (their activations count as unnamed): show</summary>"
        + _html_table(_limited(r.dropped)[0], _fmt)
        + "</details>"
        if len(r.dropped)
        else f"<p>No concept covered fewer than {r.min_images} images.</p>"
    )
    unproven = int((~r.agreement["d2_optimal"].astype(bool)).sum()) if len(r.agreement) else 0
    pair_text = (
        f"{html.escape(pair[1])} and {html.escape(pair[2])} in category {html.escape(pair[0])}"
        if pair
        else "no pair"
    )
    cov = r.coverage
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>xnaming analysis report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Interactive naming: analysis report</h1>",
        f"<p class='muted'>Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by xnaming analyze. "
        f"{len(r.categories)} categories, {n_acts} significant activations, "
        f"{len(annotators)} annotators ({html.escape(', '.join(annotators))}).</p>",
        notes,
        "<h2>Cleaning</h2>",
        dropped,
        "<h2>RQ1: coverage</h2>",
        _figure(images, "coverage_activations"),
        _figure(images, "coverage_partial"),
        _figure(images, "coverage_complete"),
        "<h3>Activation coverage</h3>",
        _per_annotator(cov, "activation_coverage"),
        "<h3>Partial explanation coverage</h3>",
        _per_annotator(cov, "partial_coverage"),
        "<h3>Complete explanation coverage</h3>",
        _per_annotator(cov, "complete_coverage"),
        "<h2>RQ2: concepts and X-features</h2>",
        "<h3>Table 2: CX-purity</h3>",
        _per_annotator(r.purity, "cx_purity"),
        "<h3>Table 3: XC-purity</h3>",
        _per_annotator(r.purity, "xc_purity"),
        "<h2>RQ3: agreement between annotators</h2>",
        _figure(images, "named_by"),
        "<h3>Krippendorff's alpha on named / not named</h3>",
        _html_table(_limited(r.reliability)[0], _fmt),
        "<h3>Table 5: pairwise agreement (min, mean ± std, max over pairs)</h3>",
        (
            f'<p class="note">{unproven} pair(s) with a D = 2 optimum not proven; see '
            "agreement.csv (d2_optimal, agreement_d2_bound).</p>"
            if unproven
            else "<p class='muted'>Every D = 2 agreement is a proven optimum.</p>"
        ),
        _pair_summary(r.agreement_summary, AGREEMENT_MEASURES),
        f"<h3>Figure 7: matchings of {pair_text}</h3>",
        _figure(images, "matching"),
        "<h3>Table 6: linguistic compatibility of matched concepts</h3>",
        _pair_summary(r.compatibility_summary, COMPATIBILITY_MEASURES),
        "<h2>Table 4: test-set explanation summaries</h2>",
        _explanations(r.summaries),
        "</body></html>",
    ]
    return "\n".join(parts)
