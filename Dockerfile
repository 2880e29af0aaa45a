# The xnaming ML backend (and the xnaming command line) for docker-compose.yml.
# Installs exactly the versions in uv.lock. Build context: the repository root.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/xnaming \
    PATH=/opt/xnaming/bin:$PATH

RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /app
# Dependencies first (a layer that changes only with uv.lock), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY xnaming ./xnaming
COPY xnn_training ./xnn_training
COPY ls_backend ./ls_backend
COPY label_config ./label_config
COPY analysis ./analysis
RUN uv sync --locked --no-dev --no-editable

RUN useradd --create-home --uid 1001 xnaming && mkdir -p /data/backend /data/bundles /data/manager \
    && chown -R xnaming /data && chmod 700 /data/manager
USER xnaming
EXPOSE 9090
# Up and answering; with the backend's basic auth, for a backend that asks for it on /health too.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import base64, os, urllib.request as u; \
auth = base64.b64encode(f\"{os.environ.get('XNAMING_BACKEND_USER', '')}:{os.environ.get('XNAMING_BACKEND_PASSWORD', '')}\".encode()).decode(); \
u.urlopen(u.Request('http://127.0.0.1:9090/health', headers={'Authorization': 'Basic ' + auth}), timeout=4)"
CMD ["xnaming", "ls", "backend", "--host", "0.0.0.0", "--port", "9090", "--state", "/data/backend"]
