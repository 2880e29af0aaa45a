"""Label Studio's settings plus xnaming's isolation (``DJANGO_SETTINGS_MODULE`` of the server).

Everything of ``core.settings.label_studio`` stays; the hooks Label Studio offers
(``PROJECT_MIXIN``, ``USER_SERIALIZER_UPDATE``) point at this package, its app and middleware
are added, and ``ROOT_URLCONF`` adds ``/api/xnaming/``. See the package docstring.

Label Studio's settings file reads ``django.conf.settings`` while it runs (Sentry set-up), that
is, this module half-done: a plain ``from ... import *`` would leave those reads without their
values. So its file runs in this module's namespace, exactly as if it were this module.
"""

from pathlib import Path

import label_studio.core.settings as _label_studio_settings

_SOURCE = Path(_label_studio_settings.__file__).with_name("label_studio.py")
exec(compile(_SOURCE.read_text(encoding="utf-8"), str(_SOURCE), "exec"))

INSTALLED_APPS = [*INSTALLED_APPS, "ls_backend.isolation.apps.IsolationConfig"]  # noqa: F821
# Last: after Label Studio's session, JWT and default-organization middleware.
MIDDLEWARE = [*MIDDLEWARE, "ls_backend.isolation.middleware.OrganizationGuard"]  # noqa: F821
PROJECT_MIXIN = "ls_backend.isolation.mixins.IsolatedProjectMixin"
USER_SERIALIZER_UPDATE = "ls_backend.isolation.serializers.GuardedUserSerializerUpdate"
ROOT_URLCONF = "ls_backend.isolation.urls"
XNAMING_ISOLATION = True
