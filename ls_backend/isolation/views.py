"""``/api/xnaming/annotators``: the manager's annotator accounts, one organization each.

Label Studio refuses to create organizations over its API (``ALLOW_ORGANIZATION_CREATION``, and
even then it adds no members) and signs every new user up into its first organization, so
``xnaming publish`` (which may run in another container and speaks HTTP only) creates
annotators here.
"""

from __future__ import annotations

import secrets

from django.db import transaction
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from . import API_VERSION
from .rules import is_manager

ORGANIZATION_TITLE = "xnaming: {email}"


def _require_manager(request) -> None:
    if not is_manager(request.user):
        raise PermissionDenied("only the project manager manages annotators")


def _describe(user) -> dict:
    from organizations.models import Organization
    from projects.models import Project

    own = Organization.objects.filter(created_by=user).first()
    projects = []
    if own is not None:
        projects = list(
            Project.objects.filter(organization=own)
            .order_by("pk")
            .values("id", "title", "created_by_id")
        )
    return {
        "id": user.pk,
        "email": user.email,
        "active": user.is_active,
        "organization": own.pk if own else None,
        "projects": projects,
    }


def _adopt(manager, own, project_ids) -> None:
    """Move projects (of the manager's organizations) into the annotator's organization.

    For data dirs made before the isolation, where every project lay in the first
    organization. What belongs to the organization moves along: the project's webhooks and
    the per-map concepts (labels) it uses.
    """
    from labels_manager.models import Label, LabelLink
    from projects.models import Project
    from webhooks.models import Webhook

    from .rules import member_organization_ids

    if not isinstance(project_ids, list) or not all(isinstance(i, int) for i in project_ids):
        raise ValidationError({"projects": f"a list of project ids is needed, got {project_ids!r}"})
    reachable = set(member_organization_ids(manager))
    for project in Project.objects.filter(pk__in=project_ids):
        if project.organization_id == own.pk:
            continue
        if project.organization_id not in reachable:
            raise PermissionDenied(f"project {project.pk} is not in an organization of yours")
        project.organization = own
        project.save(update_fields=["organization"])
        Webhook.objects.filter(project=project).update(organization=own)
        for link in LabelLink.objects.filter(project=project).select_related("label"):
            if link.label.organization_id != own.pk:
                label, _ = Label.objects.get_or_create(
                    organization=own,
                    title=link.label.title,
                    defaults={"value": link.label.value, "created_by": link.label.created_by},
                )
                link.label = label
                link.save(update_fields=["label"])


def _email(data) -> str:
    email = str(data.get("email", "")).strip() if isinstance(data, dict) else ""
    if "@" not in email or any(c.isspace() for c in email):
        raise ValidationError({"email": f"an e-mail address is needed, got {email!r}"})
    return email


def _ensure_annotator(manager, email: str) -> tuple[object, object, str | None]:
    """The annotator ``email`` in an organization of their own, with the manager in it too."""
    from organizations.models import Organization, OrganizationMember
    from users.models import User

    user = User.objects.filter(email__iexact=email).first()
    password = None
    if user is None:
        password = secrets.token_urlsafe(9)
        user = User.objects.create_user(email=email, password=password)
        user.username = email.split("@")[0]
        user.save(update_fields=["username"])
    elif is_manager(user):
        raise ValidationError({"email": f"{email} is the project manager's account"})
    own = Organization.objects.filter(created_by=user).first()
    if own is None:
        own = Organization.create_organization(
            title=ORGANIZATION_TITLE.format(email=email), created_by=user
        )
    for member in (user, manager):
        membership, _ = OrganizationMember.objects.get_or_create(user=member, organization=own)
        if membership.deleted_at is not None:
            membership.deleted_at = None
            membership.save(update_fields=["deleted_at"])
    # Out of every other organization (Label Studio signs users up into the first one).
    OrganizationMember.objects.filter(user=user).exclude(organization=own).delete()
    user.active_organization = own
    user.is_active = True
    user.save(update_fields=["active_organization", "is_active"])
    return user, own, password


class AnnotatorListAPI(APIView):
    """GET: every annotator (non-manager user). POST ``{"email", "projects"?}``: create or
    repair one, moving the listed projects into their organization."""

    permission_classes = (IsAuthenticated,)

    def get(self, request):
        from users.models import User

        _require_manager(request)
        users = User.objects.filter(is_superuser=False).order_by("pk")
        return Response({"version": API_VERSION, "annotators": [_describe(user) for user in users]})

    def post(self, request):
        _require_manager(request)
        email = _email(request.data)
        with transaction.atomic():
            user, own, password = _ensure_annotator(request.user, email)
            if request.data.get("projects"):
                _adopt(request.user, own, request.data["projects"])
        answer = {**_describe(user), "created": password is not None}
        if password is not None:
            answer["password"] = password
        return Response(answer, status=201 if password is not None else 200)


class AnnotatorAPI(APIView):
    """DELETE: deactivate an annotator (no more logins; their project and work stay)."""

    permission_classes = (IsAuthenticated,)

    def delete(self, request, pk: int):
        from users.models import User

        _require_manager(request)
        user = User.objects.filter(pk=pk, is_superuser=False).first()
        if user is None:
            raise NotFound(f"no annotator with id {pk}")
        user.is_active = False
        user.save(update_fields=["is_active"])
        return Response(_describe(user))
