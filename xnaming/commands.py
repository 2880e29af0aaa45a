"""Arguments of the commands that live in the xnaming package: ``simulate``, ``discover`` and
``demo``.

Kept apart from their logic so that building the parser imports nothing heavy (pandas alone
takes seconds on a busy machine); each handler imports what it needs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.namers.annotator_profiles import DEFAULT_ANNOTATORS  # light: no numpy or pandas
from xnaming.demo import DEFAULT_WORKDIR  # light: the demo imports its stages lazily

__all__ = ["configure_demo", "configure_discover", "configure_simulate"]


def configure_simulate(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``xnaming simulate``."""
    parser.add_argument("bundle", type=Path, help="a map bundle of toybirds images")
    parser.add_argument(
        "--annotators",
        type=int,
        default=DEFAULT_ANNOTATORS,
        help=f"how many (default {DEFAULT_ANNOTATORS}: one per profile; more are variations)",
    )
    parser.add_argument("--out", type=Path, required=True, help="the namings CSV to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of their choices (0)")
    parser.add_argument(
        "--data",
        type=Path,
        help="the toybirds data set (default: the one named in the bundle's manifest)",
    )
    parser.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from analysis.namers.simulated_annotators import simulate_bundle
    from xnn_training.bundle.io import read_bundle

    data = args.data
    if data is None:
        data = read_bundle(args.bundle).data  # named in the manifest, relative to the bundle
        if data is None:
            raise ValueError(f"{args.bundle}'s manifest names no data set: give --data")
    namings = simulate_bundle(args.bundle, data, annotators=args.annotators, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    namings.to_csv(args.out, index=False)
    counts = namings.groupby("annotator")["status"].value_counts().unstack(fill_value=0)
    print("Simulated namings (not people's):")
    print(counts.to_string())
    print(f"Wrote {len(namings)} simulated namings to {args.out}")
    return 0


def configure_discover(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``xnaming discover``."""
    parser.add_argument("bundle", type=Path, help="a map bundle with embeddings")
    parser.add_argument("--out", type=Path, required=True, help="the namings CSV to write")
    parser.add_argument(
        "--annotator",
        default="auto-embeddings",
        help="the machine annotator's name, starting with 'auto-' (default auto-embeddings)",
    )
    parser.set_defaults(handler=_discover)


def _discover(args: argparse.Namespace) -> int:
    from analysis.namers.discover import discover_namings

    namings = discover_namings(args.bundle, annotator=args.annotator)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    namings.to_csv(args.out, index=False)
    named = namings[namings["status"] == "named"]
    print(
        f"Machine namings (not people's): {len(named)} of {len(namings)} maps named, "
        f"{named.groupby('category')['concept'].nunique().sum()} concepts in "
        f"{namings['category'].nunique()} categories"
    )
    print(
        f"Wrote them to {args.out}; compare them with people's: xnaming analyze --activations "
        f"{args.bundle} --namings THEIRS.csv {args.out} --out DIR"
    )
    return 0


def configure_demo(parser: argparse.ArgumentParser) -> None:
    """Add the ``demo`` arguments to ``parser``."""
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help=f"where every stage writes its outputs (default: {DEFAULT_WORKDIR}, "
        f"{DEFAULT_WORKDIR}-shortcut with --shortcut)",
    )
    parser.add_argument(
        "--no-serve",
        dest="serve",
        action="store_false",
        help="do everything but leave no server running (CI, scripting)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a tiny data set and short training: the whole chain in a few minutes "
        "(for tests; its figures mean little). Use its own --workdir.",
    )
    parser.add_argument(
        "--shortcut",
        nargs="?",
        const="",
        metavar="CATEGORY",
        help="plant a shortcut (a cue on the background of one class's images, default the "
        "middle class) and check that the report ranks that class first among decisions "
        "to distrust",
    )
    parser.add_argument(
        "--correct",
        action="store_true",
        help="with --shortcut: then close the loop - the feedback split's maps named by "
        "simulated annotators, the corrected classifier (train dnn --from --feedback), its new "
        "maps and namings, and a report with a before/after section",
    )
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from xnaming.demo import FULL, QUICK, run_demo

    workdir = args.workdir
    if workdir is None:
        suffix = "-shortcut" if args.shortcut is not None else ""
        workdir = DEFAULT_WORKDIR.with_name(DEFAULT_WORKDIR.name + suffix)
    size = QUICK if args.quick else FULL
    if args.correct and args.shortcut is None:
        raise ValueError("--correct: give --shortcut too (the loop corrects a planted shortcut)")
    extra = {"correct": True} if args.correct else {}
    return run_demo(workdir, serve=args.serve, size=size, shortcut=args.shortcut, **extra)
