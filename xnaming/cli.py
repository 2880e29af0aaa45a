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
            # Accept anything, so a script written against the final interface gets the
            # "not implemented yet" answer rather than a usage error.
            parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            parser.set_defaults(handler=_not_built(self))
            return
        module_name, function_name = self.entry.split(":")
        getattr(import_module(module_name), function_name)(parser)


COMMANDS: tuple[Command, ...] = (
    Command(
        "data", "make a data set (toybirds) or check a local one (CUB-200-2011, ImageFolder)", 3
    ),
    Command(
        "train",
        "train the classifier (train dnn) and its per-class explanation networks (train xnn)",
        3,
    ),
    Command("explain", "significant X-features and Excitation Backprop maps: the map bundle", 4),
    Command(
        "ls", "run Label Studio and the ML backend (ls start), or the backend alone (ls backend)", 6
    ),
    Command("publish", "turn a map bundle into one Label Studio project per annotator", 6),
    Command("collect", "export the annotators' projects into a tidy namings table", 6),
    Command(
        "analyze",
        "namings -> coverage, purity, agreement, summaries, report.html",
        5,
        "analysis.cli:configure",
    ),
    Command("simulate", "simulated annotators' namings of a toybirds bundle", 7),
    Command(
        "demo", "the whole pipeline on generated toybirds, end to end", 7, "xnaming.demo:configure"
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
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("xnaming: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
