# syntax=docker/dockerfile:1
# The worker image. Build from the repository root:
#   docker build -t crm-scorer .
#   docker run -e CRM_KAFKA_BOOTSTRAP=kafka:9092 crm-scorer
# Settings come from CRM_* variables at run time (README, "Configuration"); secrets
# (SASL password, TLS key) from mounted files or the orchestrator's secrets, never here.
# Linted by hadolint in the test suite (tests/test_deploy/test_image.py).

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
# Dependencies first, from the lock (deploy/lock.py): a code change keeps this layer.
COPY deploy/requirements.lock /src/deploy/requirements.lock
RUN /opt/venv/bin/pip install --requirement deploy/requirements.lock
COPY pyproject.toml README.md /src/
COPY schemas /src/schemas
COPY models /src/models
COPY stream /src/stream
COPY eventdata /src/eventdata
RUN /opt/venv/bin/pip install --no-deps /src

FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 --user-group crm \
    && mkdir -p /var/lib/crm-scorer \
    && chown crm:crm /var/lib/crm-scorer
COPY --from=build /opt/venv /opt/venv
# The shipped extract (licences in its README), for `crm-scorer make-events --data`.
COPY data/demo /opt/crm-scorer/data/demo
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CRM_WEB_HOST=0.0.0.0 \
    CRM_WEB_PORT=6066 \
    CRM_DATA_DIR=/var/lib/crm-scorer
USER 10001:10001
WORKDIR /home/crm
VOLUME ["/var/lib/crm-scorer"]
EXPOSE 6066
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ['CRM_WEB_PORT'], timeout=2)"]
ENTRYPOINT ["crm-scorer"]
CMD ["worker"]
