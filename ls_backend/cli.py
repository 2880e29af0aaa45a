"""Command-line entries of ``xnaming ls``, ``publish``, ``collect`` and ``status``.

Each ``configure_*`` adds its command's arguments and sets ``handler``; heavy imports happen
inside the handlers so ``xnaming --help`` stays instant. Errors are reported by ``xnaming``'s
one error boundary (:mod:`xnaming.errors`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from pathlib import Path

from label_config import DEFAULT_GROUPS, MODES  # light: names and numbers only

__all__ = [
    "configure_collect",
    "configure_ls",
    "configure_publish",
    "configure_status",
    "serve_backend",
]

DEFAULT_DATA_DIR = Path("runs/label-studio")
DATA_DIR_ENV = "XNAMING_DATA_DIR"


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("XNAMING_DATA_DIR") or DEFAULT_DATA_DIR),
        help="Label Studio's data, credentials.json of `xnaming ls start` and projects.json of "
        f"publish (default: ${DATA_DIR_ENV}, else {DEFAULT_DATA_DIR})",
    )


def _add_server(parser: argparse.ArgumentParser) -> None:
    _add_data_dir(parser)
    parser.add_argument("--url", help="Label Studio URL (default: from --data-dir)")
    parser.add_argument(
        "--token",
        default=os.environ.get("LABEL_STUDIO_API_KEY"),
        help="personal access token (default: $LABEL_STUDIO_API_KEY, else from --data-dir)",
    )


def _server(args: argparse.Namespace):
    """The server to talk to: ``--url`` and ``--token`` when given, else the stored ones.

    Stored credentials belong to the server they were made for: with a ``--url`` of another
    server nothing stored is used (its token would go to that server), so ``--token`` is needed.
    """
    from ls_backend.server import Credentials, load_credentials

    url = args.url.rstrip("/") if args.url else None
    try:
        stored = load_credentials(args.data_dir)
    except FileNotFoundError:
        if not (url and args.token):
            raise
        stored = None
    if stored is None or (url and url != stored.url.rstrip("/")):
        if not args.token:
            raise ValueError(f"give --token for {url}: the credentials in {args.data_dir} are "
                             f"for {stored.url}")  # fmt: skip
        return Credentials(url=url, admin_email="", admin_password="", token=args.token)
    if args.token:
        stored.token = args.token
    return stored


def _book(args: argparse.Namespace):
    from ls_backend.manager.projects import ProjectBook

    return ProjectBook.in_data_dir(args.data_dir)


# -- xnaming ls ----------------------------------------------------------------------------


def configure_ls(parser: argparse.ArgumentParser) -> None:
    """``xnaming ls start`` and ``xnaming ls backend``."""
    sub = parser.add_subparsers(title="ls commands", metavar="WHAT", required=True)
    start = sub.add_parser("start", help="a private Label Studio and the ML backend")
    _add_data_dir(start)
    start.add_argument("--port", type=int, default=8080, help="Label Studio's port (8080)")
    start.add_argument("--backend-port", type=int, help="the ML backend's port (default: port + 1)")
    start.add_argument(
        "--files-root",
        type=Path,
        default=Path.cwd(),
        help="directory above every bundle to publish; Label Studio serves its files to "
        "logged-in users (default: the current directory)",
    )
    start.add_argument("--no-backend", action="store_true", help="start Label Studio alone")
    start.set_defaults(handler=_start)

    backend = sub.add_parser("backend", help="the ML backend alone (gunicorn, threads)")
    backend.add_argument("--host", default="127.0.0.1")
    backend.add_argument("--port", type=int, default=9090)
    backend.add_argument("--threads", type=int, default=8)
    backend.add_argument(
        "--state",
        type=Path,
        default=Path("runs/backend"),
        help="directory of the backend's SQLite state (runs/backend)",
    )
    backend.add_argument(
        "--credentials",
        type=Path,
        help="credentials.json of `xnaming ls start`: Label Studio's URL and the manager's token, "
        "which the backend reads annotations and tasks with",
    )
    backend.add_argument(
        "--label-studio-url",
        default=os.environ.get("LABEL_STUDIO_URL", ""),
        help="Label Studio to resync from ($LABEL_STUDIO_URL); token: $LABEL_STUDIO_API_KEY",
    )
    backend.set_defaults(handler=_backend)

    remove = sub.add_parser(
        "remove-annotator",
        help="stop an annotator from logging in (their project and work stay)",
        description="Deactivate an annotator's account: they can no longer log in; their "
        "project and annotations stay, and `collect` still reads them (delete the project in "
        "Label Studio to drop them). `xnaming publish` with the same e-mail lets them back in.",
    )
    remove.add_argument("email", help="the annotator's e-mail")
    _add_server(remove)
    remove.set_defaults(handler=_remove_annotator)


def _remove_annotator(args: argparse.Namespace) -> int:
    from ls_backend.manager.client import Manager

    credentials = _server(args)
    annotator = Manager(credentials.url, credentials.token).deactivate(args.email)
    projects = ", ".join(str(p["id"]) for p in annotator.projects) or "none"
    print(f"{annotator.email} can no longer log in; their projects ({projects}) stay")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _start(args: argparse.Namespace) -> int:
    from ls_backend.server import LabelStudioServer

    server = LabelStudioServer(
        args.data_dir,
        port=args.port,
        files_root=args.files_root,
        with_backend=not args.no_backend,
        backend_port=args.backend_port,
    )
    print(f"Starting Label Studio in {server.data_dir} (first run: about a minute) ...")
    # SIGTERM behaves like Ctrl-C: both stop the children cleanly.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(
        signal.SIGINT, _interrupt
    )  # also when started in the background with SIGINT ignored
    try:
        credentials = server.start()
        print(f"Label Studio: {credentials.url}")
        print(f"  log in as {credentials.admin_email} / {credentials.admin_password}")
        if credentials.backend_url:
            print(f"ML backend:   {credentials.backend_url} (its secret: in credentials.json)")
        print(f"Credentials (0600): {server.data_dir / 'credentials.json'}")
        print(f"Files served from: {server.files_root}")
        print("Next: xnaming publish BUNDLE --annotators you@example.org   (Ctrl-C stops)")
        signal.pause()
    except KeyboardInterrupt:
        print("Stopping Label Studio and the ML backend ...")
    finally:
        server.stop()
    return 0


def serve_backend(make_app, *, host: str, port: int, threads: int) -> None:
    """Serve the app ``make_app()`` builds with gunicorn: one worker, several threads.

    The app is built in the worker process (not before the fork), so the learner thread lives
    where the requests are served.
    """
    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", 1)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("timeout", 120)
            self.cfg.set("accesslog", "-")

        def load(self):
            return make_app()

    _Gunicorn().run()


def _backend(args: argparse.Namespace) -> int:
    import logging

    from ls_backend.backend.app import BackendSettings, create_app
    from ls_backend.server import port_in_use

    host = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
    if port_in_use(args.port, host):  # gunicorn would retry and log five times before giving up
        raise OSError(f"port {args.port} is in use: choose another with --port")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    user, password = (
        os.environ.get("XNAMING_BACKEND_USER"),
        os.environ.get("XNAMING_BACKEND_PASSWORD"),
    )
    settings = BackendSettings(
        state_dir=args.state,
        credentials=args.credentials,
        label_studio_url=args.label_studio_url,
        api_key=os.environ.get("LABEL_STUDIO_API_KEY", ""),
        basic_auth=(user, password) if user and password else None,
    )
    settings.require_secret()  # one line, before gunicorn starts
    print(f"ML backend on http://{args.host}:{args.port} (state: {args.state})", flush=True)
    serve_backend(
        lambda: create_app(settings), host=args.host, port=args.port, threads=args.threads
    )
    return 0


# -- xnaming publish -----------------------------------------------------------------------


def configure_publish(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path, help="the map bundle of `xnaming explain`")
    parser.add_argument(
        "--annotators", required=True, help="comma-separated e-mails, one project each"
    )
    parser.add_argument(
        "--mode", choices=MODES, default=MODES[0], help=f"the interface (default {MODES[0]})"
    )
    parser.add_argument("--categories", nargs="+", help="only these categories")
    parser.add_argument(
        "--groups",
        type=int,
        default=DEFAULT_GROUPS,
        help=f"groups per board (default {DEFAULT_GROUPS})",
    )
    parser.add_argument("--files-root", type=Path, help="Label Studio's local files root")
    parser.add_argument("--backend-url", help="ML backend to connect (default: from --data-dir)")
    parser.add_argument("--no-backend", action="store_true", help="connect no ML backend")
    _add_server(parser)
    parser.set_defaults(handler=_publish)


def _publish(args: argparse.Namespace) -> int:
    from ls_backend.manager.publish import publish

    credentials = _server(args)
    files_root = args.files_root or credentials.files_root
    if not files_root:
        raise ValueError(
            "give --files-root: the directory Label Studio serves local files from (the "
            "--files-root of `xnaming ls start`); the credentials do not record it"
        )
    book = _book(args)
    passwords = credentials.annotators | book.passwords(credentials.url)
    done = publish(
        args.bundle,
        args.annotators.split(","),
        url=credentials.url,
        token=credentials.token,
        files_root=files_root,
        mode=args.mode,
        categories=args.categories,
        backend_url="" if args.no_backend else (args.backend_url or credentials.backend_url),
        backend_auth=_backend_auth(credentials),
        groups=args.groups,
        passwords=passwords,
        book=book,
    )
    print("Annotators log in at", credentials.url)
    for project in done:
        how = project.password or "(password set earlier)"
        print(f"  {project.annotator} / {how}: {credentials.url}/projects/{project.project_id}")
    print(f"Projects and passwords recorded in {book.path} (0600)")
    return 0


def _backend_auth(credentials) -> tuple[str, str] | None:
    """The ML backend's basic auth: $XNAMING_BACKEND_USER and _PASSWORD (docker-compose),
    else the secret `xnaming ls start` made."""
    user, password = (
        os.environ.get("XNAMING_BACKEND_USER"),
        os.environ.get("XNAMING_BACKEND_PASSWORD"),
    )
    return (user, password) if user and password else credentials.backend_auth


# -- xnaming collect -----------------------------------------------------------------------


def configure_collect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="the namings CSV to write")
    _add_server(parser)
    parser.set_defaults(handler=_collect)


def _collect(args: argparse.Namespace) -> int:
    from ls_backend.manager.collect import collect

    credentials = _server(args)
    projects = _book(args).projects(credentials.url)
    namings, raw_dir = collect(credentials.url, credentials.token, args.out, projects=projects)
    counts = namings["status"].value_counts().to_dict()
    print(f"{len(namings)} namings ({counts}) -> {args.out}; raw exports in {raw_dir}")
    return 0


# -- xnaming status ------------------------------------------------------------------------


def configure_status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=10.0,
        metavar="SECONDS",
        help="print again every SECONDS (default 10) until Ctrl-C",
    )
    _add_server(parser)
    parser.set_defaults(handler=_status)


def _status(args: argparse.Namespace) -> int:
    from ls_backend.manager.status import format_status, status, watch

    credentials = _server(args)
    projects = _book(args).projects(credentials.url)
    if args.watch is None:
        print(format_status(status(credentials.url, credentials.token, projects=projects)))
        return 0
    if args.watch <= 0:
        raise ValueError(f"--watch needs a positive number of seconds, got {args.watch:g}")
    with contextlib.suppress(KeyboardInterrupt):
        watch(credentials.url, credentials.token, projects=projects, every=args.watch)
    return 0
