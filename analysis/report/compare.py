"""Before and after: one report compared with another (``xnaming analyze --compare OTHER``).

Made for a correction (``xnaming train dnn --from --feedback``) and an alignment (``xnaming
train xnn --namings``): the report of the classifier or xNN before it is OTHER, this report is
the one after. :func:`comparison_table` puts per category side by side what each report
measured: the share of decisions distrusted and whether the category is flagged
(``distrust.csv``), the activation coverage of any annotator (``coverage.csv``), and the test
accuracy and the accuracy without a planted cue when the report was given ``xnaming
evaluate``'s table (``--accuracy``, kept as ``accuracy.csv``). :func:`purity_comparison` puts
RQ2's purity side by side per category and annotator (``purity.csv``; after an alignment also
the XC-purity against the carried concepts). :func:`comparison_html` adds the same test images'
maps from both bundles side by side, for the categories flagged before. Written as
``compare.csv``, ``compare_purity.csv`` and a section of ``report.html``.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from analysis.report.thumbnails import Thumbnails

__all__ = [
    "COMPARE_COLUMNS", "PURITY_COMPARE_COLUMNS", "SOURCES", "comparison_html", "comparison_table",
    "purity_comparison", "write_sources",
]  # fmt: skip

SOURCES = "sources.json"
"""What a report was made from (its bundle), so a later report can show its maps."""
MEASURES = ["distrusted_share", "flagged", "coverage", "accuracy", "accuracy_no_cue"]
COMPARE_COLUMNS = ["category"] + [f"{m}_{when}" for m in MEASURES for when in ("before", "after")]
PURITY = ["cx_purity", "xc_purity", "xc_carried"]
PURITY_COMPARE_COLUMNS = ["category", "annotator"] + [
    f"{m}_{when}" for m in PURITY for when in ("before", "after")
]
IMAGES_SHOWN = 4


def write_sources(out: Path, *, bundle: str | Path | None) -> None:
    """Record the report's bundle (absolute path) in ``out/sources.json``."""
    entry = {"bundle": None if bundle is None else str(Path(bundle).resolve())}
    (Path(out) / SOURCES).write_text(json.dumps(entry, indent=2) + "\n")


def _measures(report: Path) -> pd.DataFrame:
    """One row per category: the measures of :data:`MEASURES` this report has (NaN others)."""
    if not (report / "distrust.csv").is_file():
        raise FileNotFoundError(
            f"--compare: {report} holds no distrust.csv; give the directory of an earlier "
            "`xnaming analyze --out`"
        )
    distrust = pd.read_csv(report / "distrust.csv").set_index("category")
    table = pd.DataFrame(index=distrust.index)
    table["distrusted_share"] = distrust["distrusted_share"]
    table["flagged"] = distrust["flagged"].astype(bool)
    coverage = pd.read_csv(report / "coverage.csv") if (report / "coverage.csv").is_file() else None
    if coverage is not None and "annotator" in coverage:
        anyone = coverage[coverage["annotator"] == "any"].set_index("category")
        table["coverage"] = anyone["activation_coverage"]
    accuracy = report / "accuracy.csv"
    if accuracy.is_file():
        scores = pd.read_csv(accuracy).set_index("category")
        for column in ("accuracy", "accuracy_no_cue"):
            if column in scores:
                table = table.join(scores[[column]], how="outer")
    return table.reindex(columns=MEASURES)


def purity_comparison(before: str | Path, after: str | Path) -> pd.DataFrame:
    """:data:`PURITY_COMPARE_COLUMNS`: RQ2's purity per category and annotator in both reports
    (``purity.csv``; ``xc_carried`` is NaN where the xNN was not aligned). Empty when either
    report has no purity.csv."""
    tables = []
    for report in (Path(before), Path(after)):
        path = report / "purity.csv"
        if not path.is_file():
            return pd.DataFrame(columns=PURITY_COMPARE_COLUMNS)
        table = pd.read_csv(path, dtype={"category": str, "annotator": str})
        tables.append(table.set_index(["category", "annotator"]).reindex(columns=PURITY))
    table = pd.merge(*tables, how="outer", left_index=True, right_index=True,
                     suffixes=("_before", "_after"))  # fmt: skip
    return table.reset_index().reindex(columns=PURITY_COMPARE_COLUMNS)


def comparison_table(before: str | Path, after: str | Path) -> pd.DataFrame:
    """:data:`COMPARE_COLUMNS`, one row per category of either report (``overall`` last when
    an accuracy table has it), the categories flagged before first."""
    old, new = _measures(Path(before)), _measures(Path(after))
    table = pd.merge(
        old, new, how="outer", left_index=True, right_index=True, suffixes=("_before", "_after")
    )
    table = table.rename_axis("category").reset_index().reindex(columns=COMPARE_COLUMNS)
    flagged = table["flagged_before"].fillna(False).astype(bool)
    table["_order"] = (~flagged).astype(int) + 2 * (table["category"] == "overall")
    table = table.sort_values(["_order", "category"], kind="stable").drop(columns="_order")
    return table.reset_index(drop=True)


def _bundle_of(report: Path) -> Path | None:
    sources = report / SOURCES
    if not sources.is_file():
        return None
    bundle = json.loads(sources.read_text()).get("bundle")
    return Path(bundle) if bundle else None


def _maps_of(bundle: Path | None) -> dict[str, list[str]]:
    if bundle is None or not (bundle / "activations.csv").is_file():
        return {}
    table = pd.read_csv(bundle / "activations.csv", dtype=str)
    return table.groupby("image_id")["activation_id"].apply(list).to_dict()


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.3f}"
    return html.escape(str(value))


def _html_table(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
        for row in table.astype(object).itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def comparison_html(
    table: pd.DataFrame,
    before: Path,
    after: Path,
    after_bundle,
    purity: pd.DataFrame | None = None,
) -> str:
    """The before/after section: the table, RQ2's purity per annotator (``purity``, from
    :func:`purity_comparison`, averaged over the categories), then the maps of the same test
    images."""
    parts = [
        '<section id="before-after"><h2>Before and after</h2>',
        f"<p>Before: {html.escape(str(before))}; after: this report. Flagged categories "
        "before come first.</p>",
        _html_table(table),
    ]
    if purity is not None and not purity.empty:
        means = purity.drop(columns="category").groupby("annotator", sort=True).mean()
        parts += [
            '<h3 id="purity-before-after">RQ2: purity before and after</h3>',
            "<p>Per annotator, the mean over categories (per category: compare_purity.csv); "
            "xc_carried: the XC-purity against the concepts an aligned xNN's X-features "
            "carry.</p>",
            _html_table(means.reset_index()),
        ]
    old_bundle, new_bundle = _bundle_of(before), after_bundle and Path(after_bundle)
    old_maps, new_maps = _maps_of(old_bundle), _maps_of(new_bundle)
    flagged = table.loc[table["flagged_before"].fillna(False).astype(bool), "category"]
    decisions = before / "distrust_decisions.csv"
    if old_maps and new_maps and len(flagged) and decisions.is_file():
        chosen = pd.read_csv(decisions, dtype={"image_id": str})
        chosen = chosen[chosen["category"].isin(flagged) & chosen["image_id"].isin(new_maps)]
        images = chosen.sort_values("distrust", ascending=False)["image_id"].head(IMAGES_SHOWN)
        old_thumbs, new_thumbs = (
            Thumbnails.from_bundle(old_bundle),
            Thumbnails.from_bundle(new_bundle),
        )
        parts.append("<h3>The same test images' maps, before | after</h3>")
        for image in images:
            cells = []
            for thumbs, ids in (
                (old_thumbs, old_maps.get(image, [])),
                (new_thumbs, new_maps[image]),
            ):
                thumbs.prepare(ids)
                imgs = [thumbs.get(i) for i in ids]
                cells.append(
                    "".join(
                        f'<img src="{t.src}" title="{html.escape(t.activation_id)}">'
                        for t in imgs
                        if t.src
                    )
                    or "(no significant map)"
                )
            parts.append(f"<p><b>{html.escape(image)}</b>: {cells[0]} &nbsp;|&nbsp; {cells[1]}</p>")
    elif not (old_maps and new_maps):
        parts.append("<p>No maps side by side: a report made without its bundle.</p>")
    parts.append("</section>")
    return "\n".join(parts)
