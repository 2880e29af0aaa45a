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

RUN useradd --create-home --uid 1001 xnaming && mkdir -p /data/backend /data/bundles \
    && chown -R xnaming /data
USER xnaming
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9090/health', timeout=4)"
CMD ["xnaming", "ls", "backend", "--host", "0.0.0.0", "--port", "9090", "--state", "/data/backend"]
