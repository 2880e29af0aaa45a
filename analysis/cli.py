"""``xnaming analyze``: namings files -> tables, figures and report.html in one directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.defaults import D2_TIME_LIMIT, DISTRUST_THRESHOLD, MIN_IMAGES

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``analyze`` arguments to ``parser``, in named groups, and set its handler."""
    _add_inputs(parser)
    _add_concepts(parser)
    _add_report(parser)
    _add_distrust(parser)
    _add_agreement(parser)
    parser.set_defaults(handler=run)


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    """The map bundle's activations, the namings files, the output directory."""
    group = parser.add_argument_group("inputs and output")
    group.add_argument(
        "--activations",
        type=Path,
        required=True,
        help="the map bundle's activations.csv (or the bundle directory)",
    )
    group.add_argument(
        "--namings",
        type=Path,
        nargs="+",
        required=True,
        metavar="FILE",
        help="tidy namings .csv or Label Studio .json exports, oldest first "
        "(a later file's row for the same annotator and activation wins)",
    )
    group.add_argument("--out", type=Path, required=True, help="directory for the outputs")


def _add_concepts(parser: argparse.ArgumentParser) -> None:
    """Which concepts count, which names mean the same, what the explanations list."""
    group = parser.add_argument_group("concepts and names")
    group.add_argument(
        "--min-images",
        type=int,
        default=MIN_IMAGES,
        help="drop concepts covering fewer distinct images, per annotator and category "
        f"(default: {MIN_IMAGES}, as in the paper)",
    )
    group.add_argument(
        "--synonyms",
        type=Path,
        help="CSV (name, synonym) of names that mean the same, "
        "added to the shipped bird-part synonyms",
    )
    group.add_argument(
        "--judgements",
        type=Path,
        help="CSV (name_a, name_b, compatibility: exact/subset/none) overriding the rules; "
        "name_pairs.csv of a previous run is a template",
    )
    group.add_argument(
        "--other", action="store_true", help='add "other" to explanations with unnamed activations'
    )


def _add_report(parser: argparse.ArgumentParser) -> None:
    """What report.html shows: Figure 7's pair, figures, map thumbnails and their categories."""
    group = parser.add_argument_group("report")
    group.add_argument(
        "--pair",
        nargs=3,
        metavar=("CATEGORY", "ANNOTATOR_A", "ANNOTATOR_B"),
        help="the pair drawn in Figure 7 (default: the category and pair with the most concepts)",
    )
    group.add_argument("--no-figures", dest="figures", action="store_false", help="tables only")
    group.add_argument(
        "--bundle",
        type=Path,
        help="the map bundle whose overlays the report shows as thumbnails and whose "
        "manifest names the concept each X-feature of an aligned xNN carries (default: the "
        "bundle holding --activations, if it is one)",
    )
    group.add_argument(
        "--no-images", dest="images", action="store_false", help="no map thumbnails in the report"
    )
    group.add_argument(
        "--image-categories",
        type=lambda text: [c.strip() for c in text.split(",") if c.strip()],
        metavar="CAT,CAT",
        help="the categories the gallery and the explanations show (default: as many as fit "
        "a thumbnail budget, flagged ones first)",
    )
    group.add_argument(
        "--accuracy",
        type=Path,
        metavar="FILE",
        help="the classifier's accuracy.csv from `xnaming evaluate`, kept in the report for "
        "a later --compare",
    )
    group.add_argument(
        "--compare",
        type=Path,
        metavar="OTHER_REPORT_DIR",
        help="add a before/after section against an earlier report (e.g. the classifier's "
        "before a correction): compare.csv and the same test images' maps side by side",
    )


def _add_distrust(parser: argparse.ArgumentParser) -> None:
    """Which names mark a map as background, and when a category is flagged."""
    group = parser.add_argument_group("distrust")
    group.add_argument(
        "--distrust-words",
        type=Path,
        metavar="FILE",
        help="names that mark a map as background, one a line (replaces the shipped "
        "analysis/data/distrust_words.txt)",
    )
    group.add_argument(
        "--distrust-threshold",
        type=float,
        default=DISTRUST_THRESHOLD,
        help="flag a category when this share of its decisions is distrusted "
        f"(default: {DISTRUST_THRESHOLD:g})",
    )


def _add_agreement(parser: argparse.ArgumentParser) -> None:
    """The time the exact D = 2 matching may take."""
    group = parser.add_argument_group("agreement at D = 2")
    group.add_argument(
        "--d2-time-limit",
        type=float,
        default=D2_TIME_LIMIT,
        help="seconds the exact D = 2 solver may spend per connected component "
        f"(default: {D2_TIME_LIMIT:g})",
    )
    group.add_argument(
        "--d2-budget",
        type=float,
        default=None,
        help="seconds of the agreement stage after which D = 2 optima are no longer proven; "
        "later pairs get the greedy "
        "matching, flagged d2_optimal = False (default: no budget, every pair exact)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the analysis for parsed arguments; returns the exit status."""
    import warnings

    from analysis.inputs import load_namings, read_activations
    from analysis.measures.compatibility import NameJudge
    from analysis.measures.distrust import DistrustWords
    from analysis.pipeline import analyze
    from analysis.report.writer import write_report

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"xnaming analyze: warning: {message}", file=sys.stderr)

    warnings.showwarning = show
    from xnn_training.bundle.io import read_bundle

    activations = read_activations(args.activations)
    found = _bundle(args)
    explained = read_bundle(found) if found is not None else None
    namings = load_namings(args.namings, activations)
    judge = NameJudge.from_files(synonyms=args.synonyms, judgements=args.judgements)
    results = analyze(
        activations,
        namings,
        min_images=args.min_images,
        judge=judge,
        other=args.other,
        progress=True,
        d2_time_limit=args.d2_time_limit,
        d2_budget=args.d2_budget,
        distrust_words=DistrustWords.from_file(args.distrust_words),
        distrust_threshold=args.distrust_threshold,
        carried=explained.concepts if explained else None,
        aligned_with=explained.aligned_with if explained else None,
    )
    pair = None
    if args.pair:
        category, a, b = args.pair
        pair = (category, *sorted([a, b]))  # pairs are stored with annotator_a < annotator_b
        _check_pair(results, pair)
    report = write_report(
        results,
        args.out,
        figures=args.figures,
        pair=pair,
        bundle=_bundle(args) if args.images else None,
        image_categories=args.image_categories,
    )
    _before_after(args, report)
    print(f"xnaming analyze: tables, figures and report in {args.out}/ (open {report})")
    return 0


def _before_after(args: argparse.Namespace, report: Path) -> None:
    """Keep the report's sources and accuracy; with --compare, add the before/after section."""
    import shutil

    from analysis.report.compare import (
        comparison_html,
        comparison_table,
        purity_comparison,
        write_sources,
    )

    bundle = _bundle(args) if args.images else None
    write_sources(args.out, bundle=bundle)
    if args.accuracy is not None:
        shutil.copyfile(args.accuracy, args.out / "accuracy.csv")
    if args.compare is None:
        return
    table = comparison_table(args.compare, args.out)
    table.to_csv(args.out / "compare.csv", index=False)
    purity = purity_comparison(args.compare, args.out)
    purity.to_csv(args.out / "compare_purity.csv", index=False)
    section = comparison_html(table, args.compare, args.out, bundle, purity)
    text = report.read_text(encoding="utf-8")
    report.write_text(text.replace("</body>", section + "\n</body>", 1), encoding="utf-8")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def _bundle(args: argparse.Namespace) -> Path | None:
    """--bundle, else the bundle directory --activations names or lies in (None if neither)."""
    if args.bundle is not None:
        return args.bundle
    given = args.activations
    folder = given if given.is_dir() else given.parent
    return folder if (folder / "manifest.json").is_file() else None


def _check_pair(results, pair: tuple[str, str, str]) -> None:
    category, a, b = pair
    table = results.agreement
    match = table[
        (table["category"] == category) & (table["annotator_a"] == a) & (table["annotator_b"] == b)
    ]
    if match.empty:
        raise ValueError(
            f"--pair: no annotators {a!r} and {b!r} in category {category!r}; pairs are listed "
            "in agreement.csv"
        )
