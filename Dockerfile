# syntax=docker/dockerfile:1
# Build: docker build -t crm-scorer .   Run: docker run -e CRM_KAFKA_BOOTSTRAP=kafka:9092 crm-scorer
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY models ./models
COPY stream ./stream
COPY eventdata ./eventdata
COPY data ./data
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/venv/bin/pip install --no-cache-dir ".[rocksdb]"

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 crm
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CRM_WEB_HOST=0.0.0.0 \
    CRM_DATA_DIR=/var/lib/crm-scorer
RUN mkdir -p /var/lib/crm-scorer && chown crm /var/lib/crm-scorer
USER crm
WORKDIR /home/crm
VOLUME ["/var/lib/crm-scorer"]
EXPOSE 6066
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s \
    CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('CRM_WEB_PORT', '6066'), timeout=2)"]
ENTRYPOINT ["crm-scorer"]
CMD ["worker"]
