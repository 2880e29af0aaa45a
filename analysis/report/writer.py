"""Writing the analysis: the CSV tables, the PNG figures and one self-contained report.html.

report.html is rendered from Jinja2 templates (``analysis/report/templates/``, autoescaped, so names
typed by annotators cannot inject markup): ``report.html.j2`` lists the sections, each section
has its own template, and ``_macros.html.j2`` draws every table, figure and thumbnail. Figures
are embedded as PNG, map thumbnails as small WebP (:mod:`analysis.report.thumbnails`) and the style
inline, so the file opens offline and can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import struct
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from analysis.measures.coverage import ANY_ANNOTATOR
from analysis.pipeline import AGREEMENT_MEASURES, COMPATIBILITY_MEASURES, Results
from analysis.report import views
from analysis.report.thumbnails import Thumbnails

__all__ = ["FIGURES", "SECTIONS", "choose_pair", "templates", "write_report"]

FIGURES = {
    "distrust": "Decisions to distrust: share of each category's test decisions",
    "coverage_activations": "Figure 3: fraction of significant activations named",
    "coverage_partial": "Figure 4: partial explanation coverage",
    "coverage_complete": "Figure 5: complete explanation coverage",
    "named_by": "Figure 6: activations named by exactly n annotators",
    "matching": "Figure 7: matchings between two annotators' concepts",
}
"""Figure file stems and captions; a figure of many categories adds pages ``<stem>-2.png``, ..."""
SECTIONS = (
    ("distrust", "Decisions to distrust", "_distrust.html.j2"),
    ("explanations", "Explanations with their images (Table 4)", "_explanations.html.j2"),
    ("gallery", "Concept gallery", "_gallery.html.j2"),
    ("coverage", "RQ1: coverage", "_coverage.html.j2"),
    ("purity", "RQ2: concepts and X-features", "_purity.html.j2"),
    ("agreement", "RQ3: agreement between annotators", "_agreement.html.j2"),
    ("cleaning", "Cleaning", "_cleaning.html.j2"),
)
"""(anchor, title, template) of report.html's sections, in order."""
TOP_EXPLANATIONS = 8


def choose_pair(results: Results) -> tuple[str, str, str] | None:
    """The default pair for Figure 7: the category and pair of annotators with most concepts.

    Ties go to the pair sharing more activations, then to the first in agreement.csv.
    """
    if results.agreement.empty:
        return None
    concepts = {
        (c.category, annotator): len(names)
        for c in results.categories
        for annotator, names in zip(c.annotators, c.concepts, strict=True)
    }
    table = results.agreement
    total = [
        concepts.get((c, a), 0) + concepts.get((c, b), 0)
        for c, a, b in zip(
            table["category"], table["annotator_a"], table["annotator_b"], strict=True
        )
    ]
    ranked = table.assign(_concepts=total).sort_values(
        ["_concepts", "both_named"], ascending=False, kind="stable"
    )
    best = ranked.iloc[0]
    return str(best["category"]), str(best["annotator_a"]), str(best["annotator_b"])


def write_report(
    results: Results,
    out_dir: str | Path,
    *,
    figures: bool = True,
    pair: tuple[str, str, str] | None = None,
    bundle: str | Path | None = None,
    image_categories: list[str] | None = None,
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
    bundle
        The map bundle the activations come from: its overlays become the thumbnails of the
        gallery, the explanations and the decisions to distrust. None: no pictures. Missing
        files are named in the report, never shown as broken images.
    image_categories
        The categories the gallery and the explanations show; default: as many as a
        thumbnail budget allows, flagged ones first
        (:func:`analysis.report.views.image_categories`).

    Returns
    -------
    pathlib.Path
        The report.html path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shown, shown_note = views.image_categories(results, chosen=image_categories)
    for name, table in results.tables().items():
        table.to_csv(out / f"{name}.csv", index=False)
    chosen = pair is not None
    pair = pair or choose_pair(results)
    for stem in FIGURES:  # no stale figure of an earlier run may sit beside this report
        for old in (out / f"{stem}.png", *out.glob(f"{stem}-*.png")):
            old.unlink(missing_ok=True)
    images = _draw(results, pair) if figures else {}
    for name, data in images.items():
        (out / f"{name}.png").write_bytes(data)
    thumbs = Thumbnails.from_bundle(bundle)
    html = _render(results, images, pair, chosen, thumbs, shown, shown_note)
    path = out / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


def _draw(results: Results, pair: tuple[str, str, str] | None) -> dict[str, bytes]:
    """Figure file stem (``coverage_partial``, ``coverage_partial-2``, ...) -> PNG bytes."""
    from analysis.report import figures as f

    images: dict[str, bytes] = {}
    if len(results.distrust):
        images["distrust"] = f.png_bytes(
            f.distrust_figure(results.distrust, threshold=results.distrust_threshold)
        )
    for stem, measure in (
        ("coverage_activations", "activation_coverage"),
        ("coverage_partial", "partial_coverage"),
        ("coverage_complete", "complete_coverage"),
    ):
        paged = f.pages(results.coverage["category"])
        for k, page in enumerate(paged, start=1):
            figure = f.coverage_figure(
                results.coverage, measure=measure, categories=page, page=(k, len(paged))
            )
            images[stem if k == 1 else f"{stem}-{k}"] = f.png_bytes(figure)
    paged = f.pages(results.named_by["category"])
    for k, page in enumerate(paged, start=1):
        figure = f.named_by_figure(results.named_by, categories=page, page=(k, len(paged)))
        images["named_by" if k == 1 else f"named_by-{k}"] = f.png_bytes(figure)
    if pair is not None:
        category = next(c for c in results.categories if c.category == pair[0])
        images["matching"] = f.png_bytes(
            f.matching_figure(category, pair[1], pair[2], results.matchings)
        )
    return images


def _png_width(data: bytes) -> int:
    return struct.unpack(">I", data[16:20])[0]  # the IHDR chunk's width


def _figures(images: dict[str, bytes], stem: str) -> list[dict]:
    names = [n for n in images if n == stem or n.startswith(f"{stem}-")]
    return [
        {
            "src": "data:image/png;base64," + base64.b64encode(images[n]).decode("ascii"),
            "caption": FIGURES[stem] + (f" (page {n.rsplit('-', 1)[1]})" if n != stem else ""),
            "width": _png_width(images[n]),
        }
        for n in names
    ]


def _per_annotator(frame: pd.DataFrame, value: str) -> dict:
    """Category x annotator table with an average row and column (Tables 2 and 3 layout)."""
    if frame.empty:
        return views.table(frame.iloc[:0], empty="No namings.")
    frame, note = views.limited(frame)
    pivot = frame.pivot_table(index="category", columns="annotator", values=value, dropna=False)
    annotators = [c for c in pivot.columns if c != ANY_ANNOTATOR]
    pivot["average"] = pivot[annotators].mean(axis=1)  # over annotators, not "any"
    pivot.loc["average"] = pivot.mean(axis=0)
    return views.table(pivot.reset_index(), note=note)


def _carried(carried: pd.DataFrame, *, first: str | None) -> dict:
    """Per category and X-feature: the concept it carries, then per annotator (``first``, the
    one the xNN was aligned with, leading) the share of their named maps named with it (of how
    many they named)."""
    if carried.empty:
        return views.table(carried.iloc[:0], empty="No X-feature carries a concept.")
    carried, note = views.limited(carried)
    cell = carried.assign(
        cell=[
            f"{named} named" if pd.isna(share) else f"{share:.2f} of {named}"
            for share, named in zip(carried["named_as_carried"], carried["named"], strict=True)
        ]
    )
    pivot = cell.pivot_table(
        index=["category", "x_feature", "carries", "maps"],
        columns="annotator",
        values="cell",
        aggfunc="first",
    )
    pivot = pivot[sorted(pivot.columns, key=lambda annotator: (annotator != first, annotator))]
    return views.table(pivot.reset_index().rename(columns={"x_feature": "X-feature"}), note=note)


def _pair_summary(summary: pd.DataFrame, measures: list[str]) -> dict:
    """Table 5 / 6 layout: per category, min, mean ± std and max of each measure."""
    if summary.empty:
        return views.table(summary.iloc[:0], empty="No pairs of annotators.")
    summary, note = views.limited(summary)
    rows = []
    for category, group in summary.groupby("category", sort=True):
        stats = group.set_index("measure")
        for label in ("min", "average", "max"):
            row = {"category": category if label == "min" else "", "": label}
            for m in measures:
                s = stats.loc[m]
                if label == "average":
                    mean = "" if pd.isna(s["mean"]) else f"{s['mean']:.2f}"
                    std = "" if pd.isna(s["std"]) or not mean else f" ± {s['std']:.2f}"
                    row[m] = mean + std
                else:
                    row[m] = views.fmt(s[label])
            rows.append(row)
    means = summary.groupby("measure")["mean"].mean()
    rows.append(
        {"category": "global average", "": ""}
        | {m: views.fmt(means.get(m, float("nan"))) for m in measures}
    )
    return views.table(pd.DataFrame(rows), str, note=note)


def _explanation_table(summaries: pd.DataFrame) -> dict:
    """Table 4 layout: per category and annotator, the most frequent explanations."""
    if summaries.empty:
        return views.table(summaries.iloc[:0], empty="No namings.")
    summaries, note = views.limited(summaries)
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
    return views.table(pd.DataFrame(rows), str, note=note)


def _picture_notes(thumbs: Thumbnails) -> list[str]:
    if thumbs.problem:
        return [f"Pictures: {thumbs.problem}."]
    missing = thumbs.missing
    if not missing:
        return []
    return [
        f"{len(missing)} map picture(s) were not found in the bundle {thumbs.root} (e.g. "
        f"{', '.join(missing[:3])}); they are shown as grey boxes naming the file. Has the "
        "bundle moved? Give its current place with --bundle."
    ]


def _render(
    results: Results,
    images: dict[str, bytes],
    pair: tuple[str, str, str] | None,
    chosen: bool,
    thumbs: Thumbnails,
    shown: list[str],
    shown_note: str,
) -> str:
    r = results
    needed: set[str] = set()
    distrust = views.distrust_view(r, needed)
    distrust["figure"] = next(iter(_figures(images, "distrust")), None)
    explanations = {
        "top": 3,
        "note": shown_note,
        "categories": views.explanations_view(r, shown, needed),
        "table": _explanation_table(r.summaries),
    }
    gallery = {"note": shown_note, "categories": views.gallery_view(r, shown, needed)}
    thumbs.prepare(needed)
    pictures = {a: thumbs.get(a) for a in needed}
    unproven = int((~r.agreement["d2_optimal"].astype(bool)).sum()) if len(r.agreement) else 0
    n_acts = int(r.coverage.loc[r.coverage["annotator"] == ANY_ANNOTATOR, "activations"].sum())
    dropped, dropped_note = views.limited(r.dropped)
    context = {
        "written": f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
        "n_categories": len(r.categories),
        "n_activations": n_acts,
        "annotators": [{"name": a} for a in r.annotator_kinds],
        "kinds": r.annotator_kinds,
        "notes": [*r.notes, *_picture_notes(thumbs)],
        "sections": [{"id": i, "title": t, "template": f} for i, t, f in SECTIONS],
        "thumbs": pictures,
        "distrust": distrust,
        "explanations": explanations,
        "gallery": gallery,
        "coverage": {
            "figures": [
                *_figures(images, "coverage_activations"),
                *_figures(images, "coverage_partial"),
                *_figures(images, "coverage_complete"),
            ],
            "activation": _per_annotator(r.coverage, "activation_coverage"),
            "partial": _per_annotator(r.coverage, "partial_coverage"),
            "complete": _per_annotator(r.coverage, "complete_coverage"),
        },
        "purity": {
            "cx": _per_annotator(r.purity, "cx_purity"),
            "xc": _per_annotator(r.purity, "xc_purity"),
            "aligned": not r.carried.empty,
            "aligned_with": (
                "the consensus of the annotators"
                if r.aligned_with == "consensus"
                else f"{r.aligned_with}'s concepts"
                if r.aligned_with
                else "the annotators' concepts"
            ),
            "xc_carried": _per_annotator(r.purity, "xc_carried"),
            "carried": _carried(r.carried, first=r.aligned_with),
        },
        "agreement": {
            "named_by": _figures(images, "named_by"),
            "reliability": views.table(views.limited(r.reliability)[0]),
            "unproven": unproven,
            "table5": _pair_summary(r.agreement_summary, AGREEMENT_MEASURES),
            "pair_text": f"{pair[1]} and {pair[2]} in category {pair[0]}" if pair else "no pair",
            "pair_why": (
                "The pair with the most concepts (choose another with --pair)."
                if pair and not chosen
                else ""
            ),
            "matching": next(iter(_figures(images, "matching")), None),
            "table6": _pair_summary(r.compatibility_summary, COMPATIBILITY_MEASURES),
        },
        "cleaning": {
            "count": len(r.dropped),
            "min_images": r.min_images,
            "table": views.table(dropped, note=dropped_note),
        },
    }
    return templates().get_template("report.html.j2").render(context)


def templates():
    """The report's Jinja2 templates (report.html, why.html): autoescaped, strict."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(
        loader=PackageLoader("analysis.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
