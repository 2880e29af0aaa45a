"""Label Studio-side isolation of annotators: a Django app and settings loaded *into* Label Studio.

Label Studio Community Edition runs one organization, and every member sees every project of it.
xnaming gives each annotator an organization of their own, and the manager (the superuser made
by ``label-studio init`` / ``LABEL_STUDIO_USERNAME``) is a member of all of them. Separate
organizations alone are not enough (seen on a live 1.23.2 server): project objects grant access
to any organization's member (``ProjectMixin.has_permission`` only rejects revoked members), so
an annotator could open, annotate and edit another's tasks by id, and could move into another
organization with ``PATCH /api/users/ID/``. What this package adds, and where:

- :mod:`.mixins` (``PROJECT_MIXIN``): a project is reachable only from the organization it lies
  in, by an active member of it. Tasks, annotations, predictions, exports, storages, ML
  backends, label links and views all ask the project.
- :mod:`.serializers` (``USER_SERIALIZER_UPDATE``): ``active_organization`` may be set only to
  an organization the user is an active member of; only the manager may change other accounts.
- :mod:`.apps`: the same membership rule on every save of a user (any route, any auth).
- :mod:`.middleware`: the manager works in one organization per request (header
  ``X-Xnaming-Organization``, or the organization of the project, task or annotation named in
  the URL); annotators are refused organization administration and requests without an
  organization.
- :mod:`.views` (``/api/xnaming/annotators``): the manager creates an annotator with their own
  organization, lists annotators, deactivates one.

Start Label Studio with ``DJANGO_SETTINGS_MODULE=ls_backend.isolation.settings``
(``xnaming ls start`` and ``docker-compose.yml`` do). The package imports nothing else from
xnaming, so it can be mounted read-only into the Label Studio container.
"""

ORGANIZATION_HEADER = "X-Xnaming-Organization"
"""The request header by which the manager picks the organization of a request."""

API_VERSION = 1
"""Answered by ``GET /api/xnaming/annotators``; raised when the API changes incompatibly."""
