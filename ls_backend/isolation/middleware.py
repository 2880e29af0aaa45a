"""Per-request organization rules (appended last to Label Studio's middleware).

The manager belongs to every annotator's organization, but Label Studio serves each request
from one organization, the user's ``active_organization``. Storing a switch would race between
commands running at once (publish, collect, status, the ML backend's resync), so the manager's
organization is chosen per request and never saved:

1. header ``X-Xnaming-Organization: ID`` (an organization the manager is a member of), else
2. the organization of the project, task or annotation in the URL (``/api/projects/ID/...``,
   ``/api/tasks/ID/...``, ``/api/annotations/ID/...``, ``?project=ID``, ``?task=ID``), else
3. the stored one.

Annotators (everyone else) are refused organization administration (members, invite links,
token settings: they own their organization in Label Studio's eyes), changes to the ML backend
and storages, the webhooks (their headers carry the ML backend's credentials), changes to a
project itself (its title and labeling config are the manager's), task imports (tasks are what
publish made), Data Manager views in a project of another organization (Label Studio accepts
any project id there), and every request while they belong to no organization. A request that
names a view of another organization (``?view=ID``) is not found (Label Studio answered 500).

For everyone: a local file outside the files root (``/data/local-files/?d=../..``) is not found
(Label Studio's ``safe_join`` raised, a 500).
"""

from __future__ import annotations

import json
import posixpath
import re

from django.http import JsonResponse

from . import ORGANIZATION_HEADER
from .rules import STORED_ORGANIZATION, is_manager, is_member, member_organization_ids

_SAFE = {"GET", "HEAD", "OPTIONS"}
_OBJECT_URL = re.compile(r"^/api/(projects|tasks|annotations)/(\d+)(/|$)")
# The manager's alone: (URL prefix, methods still allowed to annotators; None: none).
_MANAGER_ONLY = (
    (re.compile(r"^/api/webhooks(/|$)"), None),
    (re.compile(r"^/api/(organizations|invite|jwt/settings|ml|storages)(/|$)"), _SAFE),
)
_META_HEADER = "HTTP_" + ORGANIZATION_HEADER.upper().replace("-", "_")
# The manager's alone, for annotators: (URL, refused methods).
_FIXED = (
    (re.compile(r"^/api/projects/\d+/?$"), {"PUT", "PATCH", "DELETE"}),
    (re.compile(r"^/api/projects/\d+/(import|reimport|tasks/bulk)"), {"POST", "PUT", "PATCH"}),
    (re.compile(r"^/api/tasks/?$"), {"POST"}),
)
_VIEWS = re.compile(r"^/api/dm/views(/|$)")
_LOCAL_FILES = "/data/local-files"


def _refuse(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "status_code": status}, status=status)


def _organization_of(kind: str, pk: int) -> int | None:
    from projects.models import Project
    from tasks.models import Annotation, Task

    model = {"projects": Project, "tasks": Task, "annotations": Annotation}[kind]
    field = "organization_id" if model is Project else "project__organization_id"
    return model.objects.filter(pk=pk).values_list(field, flat=True).first()


def _view_organization(pk: int) -> int | None:
    from data_manager.models import View

    return View.objects.filter(pk=pk).values_list("project__organization_id", flat=True).first()


def _outside_files_root(request) -> bool:
    """``/data/local-files/?d=`` naming a path above the files root."""
    if not request.path.startswith(_LOCAL_FILES):
        return False
    path = posixpath.normpath(request.GET.get("d", "") or ".").lstrip("/")
    return path == ".." or path.startswith("../")


def _json_body(request) -> dict:
    if "json" not in (request.content_type or ""):
        return {}
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _organization_in_url(request) -> int | None:
    match = _OBJECT_URL.match(request.path)
    if match:
        return _organization_of(match.group(1), int(match.group(2)))
    for kind, key in (("projects", "project"), ("tasks", "task")):
        value = request.GET.get(key, "")
        if value.isdigit():
            return _organization_of(kind, int(value))
    return None


def _work_in(user, organization_id: int) -> None:
    """Serve this request from ``organization_id``; saves keep the stored one (see .apps)."""
    from organizations.models import Organization

    if user.active_organization_id != organization_id:
        if not hasattr(user, STORED_ORGANIZATION):
            setattr(user, STORED_ORGANIZATION, user.active_organization_id)
        user.active_organization = Organization.objects.get(pk=organization_id)


class OrganizationGuard:
    """See the module docstring."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if _outside_files_root(request):
            return _refuse(404, "not found")
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            if is_manager(user):
                refused = self._manager(request, user)
            elif request.path.startswith("/user/"):  # log out, account pages
                refused = None
            else:
                refused = self._annotator(user)
            if refused is not None:
                return refused
        return self.get_response(request)

    def _manager(self, request, user):
        header = request.META.get(_META_HEADER)
        if header is None:
            return None
        if not header.isdigit() or not is_member(user, int(header)):
            return _refuse(403, f"{ORGANIZATION_HEADER}: not an organization of yours: {header!r}")
        _work_in(user, int(header))
        request.xnaming_organization_chosen = True
        return None

    def _annotator(self, user):
        if user.active_organization_id in member_organization_ids(user):
            return None
        return _refuse(
            403, "your account belongs to no organization: ask the project manager to publish again"
        )

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if is_manager(user):
            if not getattr(request, "xnaming_organization_chosen", False):
                organization = _organization_in_url(request)
                if organization is not None and is_member(user, organization):
                    _work_in(user, organization)
            return None
        for pattern, allowed in _MANAGER_ONLY:
            if pattern.match(request.path) and (allowed is None or request.method not in allowed):
                return _refuse(403, "this is the project manager's to see or change")
        for pattern, refused in _FIXED:
            if pattern.match(request.path) and request.method in refused:
                return _refuse(403, "the project and its tasks are the project manager's to change")
        return self._views(request, user)

    def _views(self, request, user):
        """Data Manager views: only in a project of the annotator's organization."""
        own = user.active_organization_id
        view = request.GET.get("view", "")
        if view.isdigit() and _view_organization(int(view)) not in (None, own):
            return _refuse(404, "no such view")
        if _VIEWS.match(request.path) and request.method not in _SAFE:
            project = _json_body(request).get("project")
            if project is not None and (
                not str(project).isdigit() or _organization_of("projects", int(project)) != own
            ):
                return _refuse(403, "views are made in your own project only")
        return None
