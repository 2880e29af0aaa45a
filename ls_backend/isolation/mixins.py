"""``PROJECT_MIXIN``: a project is reachable only inside its own organization."""

from __future__ import annotations

from projects.mixins import ProjectMixin

from .rules import is_member


class IsolatedProjectMixin(ProjectMixin):
    """Label Studio's project mixin with an organization check.

    Every object permission below a project (task, annotation, prediction, export, storage,
    ML backend, label link, data manager view) ends in :meth:`has_permission`. Label Studio's
    own check passes any user who was not removed from the project's organization, whatever
    organization they work in; here the user must work in the project's organization
    (``active_organization``) and be an active member of it.
    """

    def has_permission(self, user) -> bool:
        if not super().has_permission(user):
            return False
        return self.organization_id == user.active_organization_id and is_member(
            user, self.organization_id
        )
