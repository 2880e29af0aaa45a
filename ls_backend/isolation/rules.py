"""Who is the manager, and which organizations a user belongs to (the one place that decides)."""

from __future__ import annotations

STORED_ORGANIZATION = "_xnaming_stored_organization"
"""Attribute of a user whose organization this request chose: the one to keep in the database."""


def is_manager(user) -> bool:
    """The project manager: Label Studio's superuser (``label-studio init --username``)."""
    return bool(getattr(user, "is_superuser", False))


def member_organization_ids(user) -> list[int]:
    """Organizations ``user`` is an active (not removed) member of, oldest membership first."""
    from organizations.models import OrganizationMember

    if user is None or user.pk is None:
        return []
    members = OrganizationMember.objects.filter(user_id=user.pk, deleted_at__isnull=True)
    return list(members.order_by("pk").values_list("organization_id", flat=True))


def is_member(user, organization_id: int | None) -> bool:
    """Whether ``user`` is an active member of organization ``organization_id``."""
    from organizations.models import OrganizationMember

    if organization_id is None or user is None or user.pk is None:
        return False
    return OrganizationMember.objects.filter(
        user_id=user.pk, organization_id=organization_id, deleted_at__isnull=True
    ).exists()
