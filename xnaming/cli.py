"""The ``xnaming`` command line: one entry point, one sub-command per pipeline stage.

The sub-commands mirror the data flow::

    data -> train -> explain -> ls / publish -> collect -> analyze
                                  simulate (stands in for annotators) -> analyze
    demo runs them all on a small generated data set.

A sub-command that is not built yet exits with :data:`EXIT_NOT_BUILT` and one line saying so,
so scripts (and ``xnaming demo``) can tell "not built" from "failed".
Heavy libraries (torch, Label Studio) are imported inside the command that needs them, so
``xnaming --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import version

__all__ = ["COMMANDS", "EXIT_NOT_BUILT", "Command", "build_parser", "main"]

EXIT_NOT_BUILT = 3
"""Exit status of a sub-command that is not built yet (argparse uses 2 for usage errors)."""


@dataclass(frozen=True)
class Command:
    """One sub-command of ``xnaming``.

    Parameters
    ----------
    name
        The word typed after ``xnaming``.
    summary
        One line for ``xnaming --help``.
    issue
        The issue that builds this command; named in the "not implemented yet" message.
    entry
        ``"module:function"``: the function adds the command's arguments to its parser and sets
        ``handler`` (a function of the parsed arguments returning an exit status). The module
        must import heavy libraries inside the handler, not at import time. ``None`` while the
        command is not built.
    """

    name: str
    summary: str
    issue: int
    entry: str | None = None

    @property
    def built(self) -> bool:
        return self.entry is not None

    def configure(self, parser: argparse.ArgumentParser) -> None:
        """Give ``parser`` this command's arguments and handler."""
        if self.entry is None:
            # Accept any arguments (see main), so a script written against the final interface
            # gets the "not implemented yet" answer rather than a usage error.
            parser.set_defaults(handler=_not_built(self), accepts_any_arguments=True)
            return
        module_name, function_name = self.entry.split(":")
        getattr(import_module(module_name), function_name)(parser)


COMMANDS: tuple[Command, ...] = (
    # Summaries fit one line of `xnaming --help` at 80 columns (60 characters at most).
    Command(
        "data",
        "make toybirds, or check a CUB-200-2011 / ImageFolder tree",
        3,
        "xnn_training.cli:configure_data",
    ),
    Command(
        "train",
        "train the classifier (dnn) and its explanation nets (xnn)",
        3,
        "xnn_training.cli:configure_train",
    ),
    Command(
        "explain",
        "significant X-features and their maps: the map bundle",
        4,
        "xnn_training.cli:configure_explain",
    ),
    Command(
        "ls",
        "run Label Studio with the ML backend, or the backend alone",
        6,
        "ls_backend.cli:configure_ls",
    ),
    Command(
        "publish",
        "a map bundle -> one Label Studio project per annotator",
        6,
        "ls_backend.cli:configure_publish",
    ),
    Command(
        "collect",
        "annotators' projects -> a tidy namings table",
        6,
        "ls_backend.cli:configure_collect",
    ),
    Command(
        "status",
        "each annotator's progress (boards, maps, concepts)",
        13,
        "ls_backend.cli:configure_status",
    ),
    Command(
        "analyze",
        "namings -> coverage, purity, agreement, report.html",
        5,
        "analysis.cli:configure",
    ),
    Command(
        "simulate",
        "simulated annotators' namings of a toybirds bundle",
        7,
        "xnaming.commands:configure_simulate",
    ),
    Command(
        "demo", "the whole pipeline on generated toybirds", 7, "xnaming.commands:configure_demo"
    ),
)


def _not_built(command: Command) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        print(
            f"xnaming {command.name}: not implemented yet (issue {command.issue}).",
            file=sys.stderr,
        )
        return EXIT_NOT_BUILT

    return handler


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser; cheap (imports nothing heavy)."""
    parser = argparse.ArgumentParser(
        prog="xnaming",
        description="Name the features a CNN decides by: xNN X-features, activation maps, "
        "Label Studio naming, and the measures of the interactive-naming study.",
    )
    parser.add_argument("--version", action="version", version=f"xnaming {version('xnaming')}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.summary, description=command.summary)
        command.configure(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``xnaming`` with ``argv`` (default: ``sys.argv[1:]``) and return its exit status."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "accepts_any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("xnaming: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
