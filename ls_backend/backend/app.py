"""The ML backend's web shell: label-studio-ml's Flask app with validated, guarded views.

label-studio-ml 1.0.9 provides the Flask app (``init_app``) and the model base class, but its
views fail without a prior ``/setup``, spawn a process per webhook and answer tracebacks. Here
the shell keeps its routes and replaces every view with one that reads a bounded, strict JSON
body (:mod:`ls_backend.backend.validation`) and calls the service
(:mod:`ls_backend.backend.service`). Every route but ``/health`` needs the backend's secret
(basic auth, compared in constant time); every error is answered as JSON ``{"error": ...}``.
"""

from __future__ import annotations

import base64
import hmac
import logging
from typing import Any

from ls_backend.backend.label_studio import LabelStudioUnavailable
from ls_backend.backend.learner import QueueFull
from ls_backend.backend.service import MODEL_VERSION, Backend
from ls_backend.backend.settings import BackendSettings, MissingSecret
from ls_backend.backend.validation import (
    MAX_REQUEST_BYTES,
    BadRequest,
    TooLarge,
    check_body_size,
    check_predict_bounds,
    check_webhook_bounds,
    parse_body,
)

__all__ = [
    "MODEL_VERSION",
    "Backend",
    "BackendSettings",
    "BadRequest",
    "MissingSecret",
    "check_basic_auth",
    "create_app",
]

log = logging.getLogger("xnaming.backend")
_OPEN = {"/health"}  # what answers without the secret (`xnaming ls start` waits on it)


def check_basic_auth(header: str | None, expected: tuple[str, str]) -> bool:
    """Whether an ``Authorization`` header carries ``expected`` (user, password)."""
    if not header or not header.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    # Constant-time comparisons of both parts (no early exit on the user name).
    ok_user = hmac.compare_digest(user.encode(), expected[0].encode())
    ok_password = hmac.compare_digest(password.encode(), expected[1].encode())
    return ok_user and ok_password


def _json_body(request) -> Any:
    """The strict JSON body, refused unread when it is too big (see validation)."""
    check_body_size(request.content_length)
    raw = request.stream.read(MAX_REQUEST_BYTES + 1)  # a chunked body has no length
    check_body_size(len(raw))
    return parse_body(raw)


def create_app(settings: BackendSettings, *, label_studio: Any = None):  # -> flask.Flask
    """The backend's Flask app, built on label-studio-ml's ``init_app`` shell.

    Parameters
    ----------
    settings
        The backend's settings; they must hold the secret.
    label_studio
        What the backend reads from Label Studio (default: from ``settings``).

    Returns
    -------
    flask.Flask
        The WSGI app; ``app.config["XNAMING_BACKEND"]`` is its :class:`Backend`.

    Raises
    ------
    MissingSecret
        When ``settings`` hold no secret: the backend does not serve without one.
    """
    settings.require_secret()
    from label_studio_ml.api import init_app
    from label_studio_ml.model import LabelStudioMLBase

    backend = Backend(settings, label_studio=label_studio)

    class NamingModel(LabelStudioMLBase):
        """label-studio-ml's model slot, delegating to :class:`Backend`."""

        def predict(self, tasks, **kwargs):
            return backend.predict({"tasks": tasks})["results"]

    app = init_app(NamingModel)
    app.config.update(XNAMING_BACKEND=backend, JSON_SORT_KEYS=False)
    # Werkzeug 2.0 applies this to form parsing only: _json_body enforces it for JSON.
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES

    if "xnaming_versions" not in app.view_functions:
        app.add_url_rule("/versions", "xnaming_versions", methods=["GET"])
    app.view_functions.update(_views(backend))
    if not app.config.get("XNAMING_HOOKS"):
        # The shell's app is a module global: register hooks once, reading the current backend.
        app.config["XNAMING_HOOKS"] = True
        _guard(app)
    return app


def _views(backend: Backend) -> dict:
    """The shell's view functions, by endpoint name, replaced by the backend's."""
    from flask import jsonify, request

    def predict_view():
        body = _json_body(request)
        check_predict_bounds(body)
        return jsonify(backend.predict(body))

    def webhook_view():
        body = _json_body(request)
        check_webhook_bounds(body)
        return jsonify(backend.webhook(body))

    def health_view():
        # "learning": events queued or being learned (benchmarks wait for it to clear).
        status = {"status": "UP", "model_version": MODEL_VERSION, "learning": backend.learning}
        return jsonify(status)

    def versions_view():
        return jsonify({"versions": [MODEL_VERSION], "model_version": MODEL_VERSION})

    def train_view():
        message = "the backend learns from Label Studio's webhooks; /train is not used"
        return jsonify({"error": message}), 410

    return dict(
        _predict=predict_view,
        _setup=lambda: jsonify(backend.setup(_json_body(request))),
        webhook=webhook_view,
        health=health_view,
        get_version=versions_view,
        xnaming_versions=versions_view,
        _train=train_view,
        _is_training=lambda: jsonify({"is_training": backend.learning}),
        metrics=lambda: jsonify({}),
    )


def _guard(app) -> None:
    """The secret on every route but /health, and JSON errors without tracebacks."""
    from flask import jsonify, request
    from label_studio_ml.api import log_request_info
    from werkzeug.exceptions import HTTPException

    # The shell logs every body through request.get_data(), which reads a body of any size
    # before _json_body can refuse it unread; its error handlers answer text.
    shell_hooks = app.before_request_funcs.get(None, [])
    if log_request_info in shell_hooks:
        shell_hooks.remove(log_request_info)
    app.error_handler_spec.clear()

    @app.before_request
    def require_secret():
        expected = app.config["XNAMING_BACKEND"].settings.require_secret()
        if request.path in _OPEN:
            return None
        if check_basic_auth(request.headers.get("Authorization"), expected):
            return None
        answer = jsonify({"error": "authentication required"})
        answer.headers["WWW-Authenticate"] = 'Basic realm="xnaming backend"'
        return answer, 401

    answers = {
        TooLarge: 413,
        BadRequest: 400,
        QueueFull: 503,
        LabelStudioUnavailable: 503,
    }
    for kind, status in answers.items():
        app.register_error_handler(kind, lambda error, s=status: (jsonify(error=str(error)), s))

    @app.errorhandler(413)
    def body_too_large(error):  # werkzeug's own, should any parser raise it
        return jsonify({"error": f"request body over {MAX_REQUEST_BYTES} bytes"}), 413

    @app.errorhandler(404)
    def not_found(error):
        return jsonify({"error": f"no such endpoint: {request.path}"}), 404

    @app.errorhandler(405)
    def not_allowed(error):
        return jsonify({"error": f"{request.method} not allowed on {request.path}"}), 405

    @app.errorhandler(HTTPException)
    def http_error(error):  # any other of werkzeug's (415, 400, ...)
        return jsonify({"error": f"{error.code} {error.name}"}), error.code

    @app.errorhandler(Exception)
    def internal(error):
        log.exception("internal error on %s", request.path)
        return jsonify({"error": f"internal error ({type(error).__name__}); see the log"}), 500
