"""The ``xnaming`` command line: one entry point, one sub-command per pipeline stage.

The sub-commands mirror the data flow::

    data -> train -> explain -> ls / publish -> collect -> analyze
                                  simulate (stands in for annotators) -> analyze
                       discover (a machine namer to compare people with) -> analyze
    demo runs them all on a small generated data set.

:func:`main` is the one error boundary (:mod:`xnaming.errors`): an expected error ends the
command with one line on stderr and a documented exit status; ``--debug`` shows the traceback.
Heavy libraries (torch, Label Studio) are imported inside the command that needs them, so
``xnaming --help`` stays instant.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import version

from xnaming.errors import classify, epilog

__all__ = ["COMMANDS", "Command", "build_parser", "main"]

DEBUG_FLAG = "--debug"
DEBUG_ENV = "XNAMING_DEBUG"


@dataclass(frozen=True)
class Command:
    """One sub-command of ``xnaming``.

    Parameters
    ----------
    name
        The word typed after ``xnaming``.
    summary
        One line for ``xnaming --help``.
    entry
        ``"module:function"``: the function adds the command's arguments to its parser and sets
        ``handler`` (a function of the parsed arguments returning an exit status). The module
        must import heavy libraries inside the handler, not at import time.
    """

    name: str
    summary: str
    entry: str

    def configure(self, parser: argparse.ArgumentParser) -> None:
        """Give ``parser`` this command's arguments and handler."""
        module_name, function_name = self.entry.split(":")
        getattr(import_module(module_name), function_name)(parser)


COMMANDS: tuple[Command, ...] = (
    # Summaries fit one line of `xnaming --help` at 80 columns (60 characters at most).
    Command(
        "data",
        "make toybirds, or check a CUB-200-2011 / ImageFolder tree",
        "xnn_training.cli:configure_data",
    ),
    Command(
        "train",
        "train the classifier (dnn) and its explanation nets (xnn)",
        "xnn_training.cli:configure_train",
    ),
    Command(
        "evaluate",
        "test accuracy, and with a planted cue its pull",
        "xnn_training.cli:configure_evaluate",
    ),
    Command(
        "explain",
        "significant X-features and their maps: the map bundle",
        "xnn_training.cli:configure_explain",
    ),
    Command(
        "why",
        "any image explained in the xNN's concepts: why.csv, why.html",
        "xnn_training.cli:configure_why",
    ),
    Command(
        "ls",
        "run Label Studio with the ML backend, or the backend alone",
        "ls_backend.cli:configure_ls",
    ),
    Command(
        "publish",
        "a map bundle -> one Label Studio project per annotator",
        "ls_backend.cli:configure_publish",
    ),
    Command(
        "collect",
        "annotators' projects -> a tidy namings table",
        "ls_backend.cli:configure_collect",
    ),
    Command(
        "status",
        "each annotator's progress (boards, maps, concepts)",
        "ls_backend.cli:configure_status",
    ),
    Command(
        "analyze",
        "namings -> coverage, purity, agreement, report.html",
        "analysis.cli:configure",
    ),
    Command(
        "simulate",
        "simulated annotators' namings of a toybirds bundle",
        "xnaming.commands:configure_simulate",
    ),
    Command(
        "discover",
        "machine namings of a bundle's maps, from their embeddings",
        "xnaming.commands:configure_discover",
    ),
    Command("demo", "the whole pipeline on generated toybirds", "xnaming.commands:configure_demo"),
)


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser; cheap (imports nothing heavy)."""
    parser = argparse.ArgumentParser(
        prog="xnaming",
        description="Name the features a CNN decides by: xNN X-features, activation maps, "
        "Label Studio naming, and the measures of the interactive-naming study.",
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"xnaming {version('xnaming')}")
    parser.add_argument(
        DEBUG_FLAG,
        action="store_true",
        help=f"on an error, print the traceback (also ${DEBUG_ENV}=1; allowed anywhere)",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.summary, description=command.summary)
        sub.set_defaults(command_name=command.name)
        command.configure(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``xnaming`` with ``argv`` (default: ``sys.argv[1:]``) and return its exit status.

    Usage errors exit through argparse (status 2). Any error the command raises is turned into
    one line on stderr, ``xnaming COMMAND: error: ...``, and the status of
    :func:`xnaming.errors.classify`; with ``--debug`` the traceback comes first.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    # --debug is accepted anywhere before "--", also after the sub-command's own options.
    end = argv.index("--") if "--" in argv else len(argv)
    debug = DEBUG_FLAG in argv[:end] or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [a for a in argv[:end] if a != DEBUG_FLAG] + argv[end:]
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (Exception, KeyboardInterrupt) as error:
        status, message = classify(error)
        if debug:
            traceback.print_exc()
        print(f"xnaming {args.command_name}: error: {message}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
