"""The Django app: the membership rule on every save of a user."""

from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import pre_save

from .rules import member_organization_ids


def keep_active_organization_a_membership(sender, instance, **kwargs) -> None:
    """Before any user is saved: an active organization they are not a member of is replaced.

    Covers every way in (REST with any authentication, forms, Label Studio's own middleware
    that falls back to the first organization), not only the serializer.
    """
    if instance.pk is None or instance.active_organization_id is None:
        return
    organizations = member_organization_ids(instance)
    if instance.active_organization_id not in organizations:
        instance.active_organization_id = organizations[0] if organizations else None


class IsolationConfig(AppConfig):
    name = "ls_backend.isolation"
    label = "xnaming_isolation"
    verbose_name = "xnaming: one organization per annotator"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model

        pre_save.connect(
            keep_active_organization_a_membership,
            sender=get_user_model(),
            dispatch_uid="xnaming-active-organization",
        )
