"""``USER_SERIALIZER_UPDATE``: what ``PATCH /api/users/ID/`` may change."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from users.serializers import BaseUserSerializerUpdate

from .rules import is_manager, is_member


class GuardedUserSerializerUpdate(BaseUserSerializerUpdate):
    """Label Studio's user update, refusing a move into a foreign organization.

    Label Studio accepts any organization id as ``active_organization`` (seen live: an
    annotator who set another's organization then listed and exported their projects).
    """

    class Meta(BaseUserSerializerUpdate.Meta):
        pass

    def _requester(self):
        request = self.context.get("request")
        return getattr(request, "user", None) or self.context.get("user")

    def validate_active_organization(self, organization):
        if organization is None or not is_member(self.instance, organization.pk):
            raise serializers.ValidationError(
                "active_organization must be an organization this user is a member of"
            )
        return organization

    def validate(self, attrs):
        requester = self._requester()
        if (
            self.instance is not None
            and requester is not None
            and self.instance.pk != requester.pk
            and not is_manager(requester)
        ):
            raise PermissionDenied("you may change only your own account")
        return super().validate(attrs)
