"""A private Label Studio server: SQLite, 127.0.0.1, local-file image serving, a local ML backend.

:class:`LabelStudioServer` initialises the data directory on first use, starts Label Studio
(and, optionally, the ML backend) as child processes, creates the admin user and a personal
access token (PAT), and stores everything the other commands need in
``DATA_DIR/credentials.json`` (mode 0600). A second start reuses the data directory.
``xnaming ls start`` and the test fixtures both use it, so tests exercise the code users run.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import requests

__all__ = [
    "Credentials",
    "LabelStudioServer",
    "free_port",
    "load_credentials",
    "login_session",
    "wait_until_up",
]

CREDENTIALS_FILE = "credentials.json"
ADMIN_EMAIL = "admin@xnaming.local"
BACKEND_USER = "xnaming"
# The ML backend listens on a loopback address of its own: Label Studio runs with SSRF protection
# on and allows this one address (ls_backend.isolation.ssrf), not the rest of the machine's
# loopback services (Label Studio's own port on 127.0.0.1 included).
BACKEND_HOST = "127.0.0.2"
ISOLATION_SETTINGS = "ls_backend.isolation.settings"  # one organization per annotator
# Earlier versions ran `label-studio init DATA_DIR/label-studio`, which made an empty project of
# that title in every annotator's list; start() deletes it from data dirs made then.
_STRAY_PROJECT = "label-studio"
_BACKEND_SECRET_ENV = ("XNAMING_BACKEND_USER", "XNAMING_BACKEND_PASSWORD")


@dataclass
class Credentials:
    """What ``publish`` and ``collect`` need to reach the server; stored 0600 in the data dir."""

    url: str
    admin_email: str
    admin_password: str
    token: str = ""
    backend_url: str = ""
    files_root: str = ""
    annotators: dict[str, str] = field(default_factory=dict)  # e-mail -> password (before 0.2)
    backend_user: str = ""  # the ML backend's basic auth: it refuses every request without it
    backend_password: str = ""

    @property
    def backend_auth(self) -> tuple[str, str] | None:
        """``(user, password)`` of the ML backend, or None when none was generated."""
        if self.backend_user and self.backend_password:
            return self.backend_user, self.backend_password
        return None

    def save(self, data_dir: Path) -> Path:
        path = Path(data_dir) / CREDENTIALS_FILE
        tmp = path.with_suffix(".tmp")
        # Create with 0600 from the start: the file holds passwords and a token.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(asdict(self), stream, indent=2)
        os.chmod(tmp, 0o600)
        tmp.replace(path)
        return path


def load_credentials(data_dir: str | Path) -> Credentials:
    """Read ``DATA_DIR/credentials.json`` written by ``xnaming ls start``.

    Raises
    ------
    FileNotFoundError
        With a hint to run ``xnaming ls start`` or pass ``--url`` and ``--token``.
    """
    path = Path(data_dir) / CREDENTIALS_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: start Label Studio with `xnaming ls start --data-dir {data_dir}` "
            "first, or give --url and --token"
        )
    stored = json.loads(path.read_text(encoding="utf-8"))
    known = {f.name for f in fields(Credentials)}
    return Credentials(**{key: value for key, value in stored.items() if key in known})


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something answers on ``host``:``port``."""
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0


def wait_until_up(
    url: str,
    process: subprocess.Popen | None,
    timeout: float,
    log: Path,
    *,
    auth: tuple[str, str] | None = None,
) -> None:
    """Poll ``url`` (with basic ``auth``, if given) until it answers 200; fail early if
    ``process`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(
                f"server exited with status {process.returncode}; log {log}:\n{tail}"
            )
        try:
            if requests.get(url, timeout=2, auth=auth).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s; see {log}")


def login_session(url: str, email: str, password: str) -> requests.Session:
    """A requests session logged in to Label Studio's web UI as ``email``."""
    session = requests.Session()
    login = f"{url}/user/login/"
    session.get(login, timeout=30)
    answer = session.post(
        login,
        data={
            "email": email,
            "password": password,
            "csrfmiddlewaretoken": session.cookies.get("csrftoken", ""),
        },
        headers={"Referer": login},
        timeout=30,
    )
    if answer.url.rstrip("/").endswith("/user/login") or "sessionid" not in session.cookies:
        raise PermissionError(f"could not log in to {url} as {email}: wrong password?")
    return session


class LabelStudioServer:
    """Start and stop a private Label Studio (and the ML backend) on 127.0.0.1.

    Parameters
    ----------
    data_dir
        Everything lives here: Label Studio's SQLite data, the backend's state, the logs and
        ``credentials.json``.
    port
        Label Studio's port; the ML backend listens on ``backend_port`` (default ``port + 1``).
    files_root
        Directory whose files Label Studio may serve to annotators (local files storage);
        bundles must lie under it.
    with_backend
        Also start the ML backend (``xnaming ls backend``).
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        port: int = 8080,
        files_root: str | Path | None = None,
        with_backend: bool = True,
        backend_port: int | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.backend_port = backend_port or port + 1
        self.files_root = Path(files_root or Path.cwd()).resolve()
        self.with_backend = with_backend
        self.url = f"http://127.0.0.1:{port}"
        self.backend_url = f"http://{BACKEND_HOST}:{self.backend_port}"
        self._processes: list[subprocess.Popen] = []

    # -- environment ---------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _BACKEND_SECRET_ENV}
        env.update(
            LABEL_STUDIO_BASE_DATA_DIR=str(self.data_dir / "base"),
            LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED="true",
            LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(self.files_root),
            # SSRF protection on (the isolation settings insist), the ML backend's address allowed.
            ML_BLOCK_LOCAL_IP="true",
            SSRF_PROTECTION_ENABLED="true",
            XNAMING_ALLOWED_ADDRESSES=BACKEND_HOST,
            LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
            COLLECT_ANALYTICS="false",
            # Annotators' work stays on this machine: no error reports to Label Studio's Sentry.
            SENTRY_DSN="",
            FRONTEND_SENTRY_DSN="",
            # Each annotator in an organization of their own (ls_backend.isolation).
            DJANGO_SETTINGS_MODULE=ISOLATION_SETTINGS,
        )
        return env

    def _label_studio(self, *args: str) -> list[str]:
        return [str(Path(sys.executable).with_name("label-studio")), *args]

    # -- life cycle ----------------------------------------------------------------------

    def start(self, timeout: float = 240) -> Credentials:
        """Initialise on first use, start the servers, make sure the admin PAT exists."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        credentials = self._credentials_for_start()
        if port_in_use(self.port):
            raise OSError(f"port {self.port} on 127.0.0.1 is in use: choose another with --port")
        if self.with_backend and port_in_use(self.backend_port, BACKEND_HOST):
            raise OSError(
                f"port {self.backend_port} on {BACKEND_HOST} is in use: choose another with "
                "--backend-port"
            )
        if not (self.data_dir / "base" / "label_studio.sqlite3").exists():
            self._run_init(credentials)
        log = self.data_dir / "label-studio.log"
        start = ["start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port)]
        self._spawn(self._label_studio(*start), log)
        if self.with_backend:
            self._spawn_backend(credentials)
        try:
            wait_until_up(f"{self.url}/health", self._processes[0], timeout, log)
            if self.with_backend:
                self._wait_for_backend(credentials.backend_auth)
            if not credentials.token:
                credentials.token = self._create_token(credentials)
            self._check_isolation(credentials.token)
        except BaseException:
            self.stop()
            raise
        credentials.url = self.url
        credentials.backend_url = self.backend_url if self.with_backend else ""
        credentials.files_root = str(self.files_root)
        credentials.save(self.data_dir)
        return credentials

    def _credentials_for_start(self) -> Credentials:
        """The stored credentials, or new ones; the ML backend's secret is made once."""
        try:
            credentials = load_credentials(self.data_dir)
        except FileNotFoundError:
            credentials = Credentials(
                url=self.url, admin_email=ADMIN_EMAIL, admin_password=secrets.token_urlsafe(12)
            )
        if not credentials.backend_auth:
            credentials.backend_user = BACKEND_USER
            credentials.backend_password = secrets.token_urlsafe(24)
        credentials.save(self.data_dir)  # before any process may need it
        return credentials

    def _spawn_backend(self, credentials: Credentials) -> None:
        """``xnaming ls backend`` on BACKEND_HOST; its secret goes by environment, never argv."""
        command = [sys.executable, "-m", "xnaming.cli", "ls", "backend", "--host", BACKEND_HOST]
        command += ["--port", str(self.backend_port), "--state", str(self.data_dir / "backend")]
        command += ["--credentials", str(self.data_dir / CREDENTIALS_FILE)]
        secret = dict(zip(_BACKEND_SECRET_ENV, credentials.backend_auth or ("", ""), strict=True))
        self._spawn(command, self.data_dir / "backend.log", extra_env=secret)

    def _wait_for_backend(self, auth: tuple[str, str] | None) -> None:
        wait_until_up(
            f"{self.backend_url}/health",
            self._processes[1],
            60,
            self.data_dir / "backend.log",
            auth=auth,
        )

    def _run_init(self, credentials: Credentials) -> None:
        log = self.data_dir / "label-studio-init.log"
        with log.open("w") as stream:
            done = subprocess.run(
                self._label_studio(
                    "init",  # no project name: that would make a stray project
                    "--no-browser",
                    # One argument each: a generated password may start with "-".
                    f"--username={credentials.admin_email}",
                    f"--password={credentials.admin_password}",
                ),
                env=self._env(),
                stdout=stream,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"label-studio init failed ({done.returncode}); see {log}")

    def _spawn(self, command: list[str], log: Path, extra_env: dict | None = None) -> None:
        stream = log.open("a")
        process = subprocess.Popen(
            command,
            env=self._env() | (extra_env or {}),
            stdout=stream,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            start_new_session=True,  # its own process group: stop() ends its children too
        )
        stream.close()
        self._processes.append(process)

    def _create_token(self, credentials: Credentials) -> str:
        session = login_session(self.url, credentials.admin_email, credentials.admin_password)
        answer = session.post(
            f"{self.url}/api/token/",
            headers={"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": self.url},
            timeout=30,
        )
        if answer.status_code != 201:
            raise RuntimeError(
                f"could not create the admin's personal access token: {answer.status_code} "
                f"{answer.text[:200]} (a PAT already exists and credentials.json lost it? "
                "revoke it in Account & Settings, then start again)"
            )
        return str(answer.json()["token"])

    def _check_isolation(self, token: str) -> None:
        """Fail unless the isolation answers; delete the stray project of older data dirs."""
        from ls_backend.manager.client import Manager

        manager = Manager(self.url, token)
        manager.annotators()  # raises IsolationMissing when the settings were not loaded
        stray = str(self.data_dir / _STRAY_PROJECT)
        for organization, project in manager.projects():
            if project["title"] == stray and not project.get("task_number"):
                manager.request(
                    "DELETE", f"/api/projects/{project['id']}/", organization=organization
                )

    def stop(self, timeout: float = 20) -> None:
        """Stop the servers started here (their whole process groups)."""
        for process in reversed(self._processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for process in reversed(self._processes):
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._processes.clear()

    def restart_backend(self) -> None:
        """Kill the ML backend (SIGKILL, as a crash would) and start it again; for tests."""
        if not self.with_backend or len(self._processes) < 2:
            raise RuntimeError("no ML backend was started here")
        backend = self._processes.pop(1)
        os.killpg(backend.pid, signal.SIGKILL)
        backend.wait()
        credentials = load_credentials(self.data_dir)
        self._spawn_backend(credentials)
        self._processes.insert(1, self._processes.pop())
        self._wait_for_backend(credentials.backend_auth)

    def __enter__(self) -> Credentials:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
