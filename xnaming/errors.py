"""The command line's one error boundary: expected errors, their exit status and their one line.

Every ``xnaming`` command runs inside :func:`xnaming.cli.main`, which hands any exception to
:func:`classify`. Expected errors (a missing file, a folder that is not a bundle, no Label
Studio running, a wrong token) become one line naming what was wrong and how to fix it, and one
of the exit statuses below; anything else is a bug, reported in one line too. The traceback is
printed only with ``xnaming --debug`` (or ``XNAMING_DEBUG=1``). The library code raises plain
Python exceptions (``ValueError`` for bad input, ``FileNotFoundError``, ...), so it knows
nothing of the command line.
"""

from __future__ import annotations

import re
import sys

__all__ = [
    "BAD_INPUT",
    "ERROR",
    "EXIT_STATUSES",
    "INTERRUPTED",
    "NOT_FOUND",
    "OK",
    "REFUSED",
    "UNREACHABLE",
    "USAGE",
    "classify",
    "epilog",
]

OK = 0
ERROR = 1
USAGE = 2
BAD_INPUT = 3
NOT_FOUND = 4
UNREACHABLE = 5
REFUSED = 6
INTERRUPTED = 130

EXIT_STATUSES: dict[int, str] = {
    OK: "done",
    ERROR: "failed (an 'internal error' is a bug: rerun with --debug and report it)",
    USAGE: "usage: an unknown option, or a required one missing",
    BAD_INPUT: "bad input: a file, folder, value or port that cannot be used as given",
    NOT_FOUND: "not found: a path, credentials file or project that does not exist",
    UNREACHABLE: "server unreachable: Label Studio (or the ML backend) does not answer",
    REFUSED: "refused: Label Studio answered with an error (e.g. a wrong token)",
    INTERRUPTED: "interrupted (Ctrl-C)",
}
"""Exit status -> meaning; printed by ``xnaming --help`` and listed in the README."""


def epilog() -> str:
    """The exit statuses, for ``xnaming --help``."""
    lines = [f"  {code:>3}  {meaning}" for code, meaning in EXIT_STATUSES.items()]
    hint = "Add --debug (anywhere on the line) to see the traceback of an error."
    return "exit statuses:\n" + "\n".join(lines) + "\n\n" + hint


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _os_message(error: OSError) -> str:
    if error.filename is not None and error.strerror and str(error).startswith("[Errno"):
        return f"{error.filename}: {error.strerror.lower()}"
    return str(error)


def _server_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """The HTTP libraries' "no answer" and "error answer" exceptions, if they were imported."""
    unreachable: list[type] = [ConnectionError]
    refused: list[type] = []
    if "requests" in sys.modules:
        import requests

        unreachable += [requests.ConnectionError, requests.Timeout]
        refused.append(requests.HTTPError)
    if "httpx" in sys.modules:
        import httpx

        unreachable.append(httpx.TransportError)
        refused.append(httpx.HTTPStatusError)
    if "label_studio_sdk" in sys.modules:
        from label_studio_sdk.core.api_error import ApiError

        refused.append(ApiError)
    return tuple(unreachable), tuple(refused)


def _where(error: BaseException) -> str:
    """The URL a failed request went to, when the error knows it."""
    try:
        request = error.request  # requests and httpx both keep the failed request
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError when it has none
        return ""
    url = getattr(request, "url", None)
    return f" at {url}" if url else ""


def _refusal(error: BaseException) -> str:
    status = getattr(error, "status_code", None)
    if status is None and getattr(error, "response", None) is not None:
        status = error.response.status_code
    body = getattr(error, "body", None)
    detail = body.get("detail") if isinstance(body, dict) else body
    if status in (401, 403):
        return (
            f"Label Studio refused the request ({status}{': ' + str(detail) if detail else ''}): "
            "give a valid personal access token with --token (or $LABEL_STUDIO_API_KEY), or the "
            "--data-dir of the `xnaming ls start` that made it"
        )
    return f"Label Studio answered {status}{': ' + str(detail)[:300] if detail else ''}"


def classify(error: BaseException) -> tuple[int, str]:
    """The exit status and the one-line message of an error raised by a command.

    Parameters
    ----------
    error
        What the command raised.

    Returns
    -------
    (int, str)
        One of the statuses of :data:`EXIT_STATUSES`, and a message of one line (without the
        ``xnaming COMMAND: error:`` prefix).
    """
    unreachable, refused = _server_errors()
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED, "interrupted"
    if isinstance(error, TimeoutError):  # a server that was started did not come up
        return UNREACHABLE, _one_line(str(error) or "timed out")
    if isinstance(error, unreachable):
        what = _os_message(error) if isinstance(error, OSError) else str(error)
        what = what or type(error).__name__
        return UNREACHABLE, _one_line(
            f"no answer{_where(error)} ({what}): is Label Studio running? Start it with "
            "`xnaming ls start`, or give the right --url"
        )
    if isinstance(error, refused):
        return REFUSED, _one_line(_refusal(error))
    if isinstance(error, FileNotFoundError | NotADirectoryError):
        return NOT_FOUND, _one_line(_os_message(error))
    if isinstance(error, LookupError) and not isinstance(error, KeyError | IndexError):
        return NOT_FOUND, _one_line(str(error))
    if isinstance(error, ValueError | OSError):  # incl. BundleError, ExportError, JSON errors
        message = _os_message(error) if isinstance(error, OSError) else str(error)
        return BAD_INPUT, _one_line(message)
    if isinstance(error, RuntimeError) and str(error):  # an expected failure, said as such
        return ERROR, _one_line(str(error))
    return ERROR, _one_line(
        f"internal error ({type(error).__name__}: {error}); rerun with --debug for the "
        "traceback and report it"
    )
