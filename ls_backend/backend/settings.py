"""The ML backend's settings: one object, built once at start-up (``xnaming ls backend``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BackendSettings", "MissingSecret"]


class MissingSecret(ValueError):
    """The backend was asked to serve without the secret Label Studio must send."""


@dataclass(frozen=True)
class BackendSettings:
    """Everything the backend is configured with.

    Parameters
    ----------
    state_dir
        Where the SQLite store lives.
    credentials
        ``credentials.json`` of ``xnaming ls start`` (read when the backend asks Label Studio,
        for its URL and the manager's token), or ``None``.
    label_studio_url, api_key
        Label Studio and the manager's token, when no credentials file is given (docker-compose:
        ``LABEL_STUDIO_URL``, ``LABEL_STUDIO_API_KEY``).
    basic_auth
        ``(user, password)`` that every request but ``/health`` must carry; the backend does
        not serve without it (:meth:`require_secret`).
    """

    state_dir: Path
    credentials: Path | None = None
    label_studio_url: str = ""
    api_key: str = ""
    basic_auth: tuple[str, str] | None = None

    def require_secret(self) -> tuple[str, str]:
        """The basic-auth pair, or :class:`MissingSecret` with the one line that says how.

        Raises
        ------
        MissingSecret
            When the user or the password is missing or empty.
        """
        if not self.basic_auth or not all(self.basic_auth):
            raise MissingSecret(
                "the ML backend serves only with a secret: set XNAMING_BACKEND_USER and "
                "XNAMING_BACKEND_PASSWORD (`xnaming ls start` generates them into "
                "credentials.json; docker-compose reads them from .env)"
            )
        return self.basic_auth

    def label_studio(self) -> tuple[str, str]:
        """Label Studio's URL and the manager's token, or empty strings.

        Read on every call: on the first ``xnaming ls start`` the token is written after the
        backend is up.
        """
        url, key = self.label_studio_url, self.api_key
        if self.credentials and Path(self.credentials).exists():
            stored = json.loads(Path(self.credentials).read_text(encoding="utf-8"))
            url, key = url or stored.get("url", ""), key or stored.get("token", "")
        return url.rstrip("/"), key
