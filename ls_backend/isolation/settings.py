"""Label Studio's settings plus xnaming's isolation (``DJANGO_SETTINGS_MODULE`` of the server).

Everything of ``core.settings.label_studio`` stays; the hooks Label Studio offers
(``PROJECT_MIXIN``, ``USER_SERIALIZER_UPDATE``) point at this package, its app and middleware
are added, and ``ROOT_URLCONF`` adds ``/api/xnaming/``. See the package docstring.

Label Studio's settings file reads ``django.conf.settings`` while it runs (Sentry set-up), that
is, this module half-done: a plain ``from ... import *`` would leave those reads without their
values. So its file runs in this module's namespace, exactly as if it were this module.

SSRF protection is always on here (:mod:`.ssrf`): Label Studio calls no private or loopback
address but those in ``XNAMING_ALLOWED_ADDRESSES`` (the ML backend's).
"""

import os
from pathlib import Path

import label_studio.core.settings as _label_studio_settings

from .ssrf import ALLOWED_ADDRESSES_ENV, allowed_addresses, banned_subnets

_SOURCE = Path(_label_studio_settings.__file__).with_name("label_studio.py")
exec(compile(_SOURCE.read_text(encoding="utf-8"), str(_SOURCE), "exec"))

INSTALLED_APPS = [*INSTALLED_APPS, "ls_backend.isolation.apps.IsolationConfig"]  # noqa: F821
# Last: after Label Studio's session, JWT and default-organization middleware.
MIDDLEWARE = [*MIDDLEWARE, "ls_backend.isolation.middleware.OrganizationGuard"]  # noqa: F821
PROJECT_MIXIN = "ls_backend.isolation.mixins.IsolatedProjectMixin"
USER_SERIALIZER_UPDATE = "ls_backend.isolation.serializers.GuardedUserSerializerUpdate"
ROOT_URLCONF = "ls_backend.isolation.urls"
XNAMING_ISOLATION = True

SSRF_PROTECTION_ENABLED = True  # task imports from URLs, webhooks
ML_BLOCK_LOCAL_IP = True  # the ML backend's connection
USE_DEFAULT_BANNED_SUBNETS = False  # the same subnets, less the allowed addresses:
USER_ADDITIONAL_BANNED_SUBNETS = [
    *banned_subnets(allowed_addresses(os.environ.get(ALLOWED_ADDRESSES_ENV, ""))),
    *(USER_ADDITIONAL_BANNED_SUBNETS or []),  # noqa: F821
]
