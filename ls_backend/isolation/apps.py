"""The Django app: the membership rule on every save of a user."""

from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_save, pre_save

from .rules import STORED_ORGANIZATION, member_organization_ids

_CHOSEN = "_xnaming_chosen_organization"


def keep_active_organization_a_membership(sender, instance, **kwargs) -> None:
    """Before any user is saved: an active organization they are not a member of is replaced.

    Covers every way in (REST with any authentication, forms, Label Studio's own middleware
    that falls back to the first organization), not only the serializer. The organization the
    middleware chose for one request of the manager is not saved (Label Studio saves the whole
    user when they annotate): the stored one is written, and restored in memory afterwards.
    """
    if hasattr(instance, STORED_ORGANIZATION):
        setattr(instance, _CHOSEN, instance.active_organization_id)
        instance.active_organization_id = getattr(instance, STORED_ORGANIZATION)
    if instance.pk is None or instance.active_organization_id is None:
        return
    organizations = member_organization_ids(instance)
    if instance.active_organization_id not in organizations:
        instance.active_organization_id = organizations[0] if organizations else None


def restore_chosen_organization(sender, instance, **kwargs) -> None:
    """After the save: the request goes on in the organization it was served from."""
    if hasattr(instance, _CHOSEN):
        instance.active_organization_id = getattr(instance, _CHOSEN)
        delattr(instance, _CHOSEN)


class IsolationConfig(AppConfig):
    name = "ls_backend.isolation"
    label = "xnaming_isolation"
    verbose_name = "xnaming: one organization per annotator"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model

        user = get_user_model()
        pre_save.connect(
            keep_active_organization_a_membership, sender=user, dispatch_uid="xnaming-organization"
        )
        post_save.connect(
            restore_chosen_organization, sender=user, dispatch_uid="xnaming-chosen-organization"
        )
