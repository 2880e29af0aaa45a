"""The project manager's view of an isolated Label Studio (``ls_backend.isolation``), over HTTP.

Each annotator has an organization of their own and the manager is a member of all of them;
Label Studio serves a request from one organization, which the manager picks with the header
``X-Xnaming-Organization`` (:meth:`Manager.client`). ``publish``, ``collect`` and ``status``
reach every annotator through this class, so they work the same against ``xnaming ls start``
and against docker-compose, where they run in another container.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests

from ls_backend.isolation import API_VERSION, ORGANIZATION_HEADER

__all__ = ["Annotator", "IsolationMissing", "Manager", "explain_refusal"]


class IsolationMissing(RuntimeError):
    """The server does not run xnaming's isolation settings."""


def _refused_fields(body) -> str:
    """``field: message; ...`` of a Label Studio error body (its ``validation_errors``)."""
    errors = body.get("validation_errors") if isinstance(body, dict) else None
    if not isinstance(errors, dict) or not errors:
        return ""
    said = []
    for name, messages in errors.items():
        text = " ".join(map(str, messages)) if isinstance(messages, list) else str(messages)
        said.append(f"{name}: {text}")
    return "; ".join(said)


@contextmanager
def explain_refusal(what: str) -> Iterator[None]:
    """Re-raise a Label Studio SDK refusal saying what was asked and which field was refused.

    Label Studio answers a refused value with ``400: Validation error`` and names the field only
    in ``validation_errors``; the command line shows ``detail``. So ``detail`` becomes, e.g.,
    ``adding the local files storage to project 5: Validation error (path: ...)``.
    """
    from label_studio_sdk.core.api_error import ApiError

    try:
        yield
    except ApiError as error:
        body = error.body if isinstance(error.body, dict) else {"detail": error.body}
        detail = str(body.get("detail") or "refused")
        fields = _refused_fields(body)
        body = {**body, "detail": f"{what}: {detail}" + (f" ({fields})" if fields else "")}
        raise ApiError(status_code=error.status_code, headers=error.headers, body=body) from error


@dataclass
class Annotator:
    """An annotator account as ``/api/xnaming/annotators`` describes it."""

    id: int
    email: str
    active: bool
    organization: int | None
    projects: list[dict] = field(default_factory=list)  # id, title, created_by_id
    password: str | None = None  # only when the account was just created

    @classmethod
    def from_json(cls, data: dict) -> Annotator:
        return cls(
            id=int(data["id"]),
            email=str(data["email"]),
            active=bool(data["active"]),
            organization=data.get("organization"),
            projects=list(data.get("projects", [])),
            password=data.get("password"),
        )


class Manager:
    """The manager's calls: annotator accounts, and a Label Studio client per organization.

    Parameters
    ----------
    url
        Label Studio, e.g. ``http://127.0.0.1:8080``.
    token
        The manager's personal access token (or a legacy token, where enabled).
    timeout
        Seconds per HTTP call.
    """

    def __init__(self, url: str, token: str, *, timeout: float = 120) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._access = ""
        self._me: dict | None = None

    # -- raw calls -----------------------------------------------------------------------

    def _authorization(self, refresh: bool = False) -> str:
        if self.token.count(".") != 2:  # not a JWT: a legacy token
            return f"Token {self.token}"
        if refresh or not self._access:
            answer = requests.post(
                f"{self.url}/api/token/refresh/", json={"refresh": self.token}, timeout=30
            )
            if answer.status_code != 200:
                raise requests.HTTPError(
                    f"Label Studio at {self.url} refused the token ({answer.status_code}): "
                    "give the manager's personal access token (--token or $LABEL_STUDIO_API_KEY)",
                    response=answer,
                )
            self._access = answer.json()["access"]
        return f"Bearer {self._access}"

    def request(
        self, method: str, path: str, *, organization: int | None = None, **kwargs
    ) -> requests.Response:
        """One API call as the manager (refreshing the access token once when it expired)."""
        headers = dict(kwargs.pop("headers", {}))
        if organization is not None:
            headers[ORGANIZATION_HEADER] = str(organization)
        for refresh in (False, True):
            headers["Authorization"] = self._authorization(refresh)
            answer = requests.request(
                method, self.url + path, headers=headers, timeout=self.timeout, **kwargs
            )
            if answer.status_code != 401 or self.token.count(".") != 2:
                break
        return answer

    def _json(self, method: str, path: str, **kwargs):
        answer = self.request(method, path, **kwargs)
        if answer.status_code == 404 and path.startswith("/api/xnaming/"):
            raise IsolationMissing(
                f"Label Studio at {self.url} does not run xnaming's isolation "
                "(DJANGO_SETTINGS_MODULE=ls_backend.isolation.settings; `xnaming ls start` and "
                "docker-compose.yml set it): without it annotators would see each other's work"
            )
        if answer.status_code >= 400:
            raise requests.HTTPError(
                f"{method} {path} on {self.url}: {answer.status_code} {answer.text[:300]}",
                response=answer,
            )
        return answer.json() if answer.content else None

    # -- annotators ----------------------------------------------------------------------

    def me(self) -> dict:
        """The manager's own account (``id``, ``email``)."""
        if self._me is None:
            self._me = self._json("GET", "/api/current-user/whoami")
        return self._me

    def annotators(self) -> list[Annotator]:
        """Every annotator account, with their organization and its projects."""
        answer = self._json("GET", "/api/xnaming/annotators")
        if answer.get("version") != API_VERSION:
            raise IsolationMissing(
                f"Label Studio at {self.url} runs isolation API version {answer.get('version')}, "
                f"this xnaming speaks {API_VERSION}: use the same xnaming for both"
            )
        return [Annotator.from_json(a) for a in answer["annotators"]]

    def ensure_annotator(self, email: str, *, adopt: Sequence[int] = ()) -> Annotator:
        """Create ``email``'s account and organization, or repair them; reactivates.

        ``adopt``: projects of the manager's to move into the annotator's organization.
        """
        body = {"email": email, "projects": list(adopt)}
        return Annotator.from_json(self._json("POST", "/api/xnaming/annotators", json=body))

    def deactivate(self, email: str) -> Annotator:
        """Stop ``email`` from logging in; their project and annotations stay."""
        known = {a.email.lower(): a for a in self.annotators()}
        if email.lower() not in known:
            raise LookupError(f"no annotator {email} on {self.url}; known: {sorted(known)}")
        return Annotator.from_json(
            self._json("DELETE", f"/api/xnaming/annotators/{known[email.lower()].id}")
        )

    # -- projects ------------------------------------------------------------------------

    def client(self, organization: int):
        """A ``label_studio_sdk.LabelStudio`` client that works in ``organization``."""
        from label_studio_sdk import LabelStudio

        return LabelStudio(
            base_url=self.url,
            api_key=self.token,
            timeout=self.timeout,
            headers={ORGANIZATION_HEADER: str(organization)},
        )

    def organizations(self) -> list[int]:
        """The organizations the manager is a member of."""
        return [int(o["id"]) for o in self._json("GET", "/api/organizations/")]

    def projects(self) -> list[tuple[int, dict]]:
        """``(organization, project)`` for every project in every organization of the manager."""
        found = []
        for organization in self.organizations():
            page = 1
            while True:
                answer = self._json(
                    "GET",
                    f"/api/projects/?page={page}&page_size=100",
                    organization=organization,
                )
                found += [(organization, p) for p in answer["results"]]
                if not answer.get("next"):
                    break
                page += 1
        return found
