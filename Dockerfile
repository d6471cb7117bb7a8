# syntax=docker/dockerfile:1
# One image for every newswire service: poller, processor, indexer, web/API.
# The service is chosen by the command: `newswire poll|process|index|serve`.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Every dependency ships a manylinux wheel, so no compiler is needed in this stage.
COPY . /src
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install /src

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="newswire" \
      org.opencontainers.image.description="Streaming news ingestion: feeds -> Kafka -> Faust -> search" \
      org.opencontainers.image.licenses="MIT"
# Group 0 owns the writable paths so an arbitrary UID (OpenShift, runAsUser) still works.
RUN useradd --system --uid 10001 --gid 0 --home-dir /home/newswire --create-home newswire \
 && mkdir -p /data \
 && chown 10001:0 /data \
 && chmod 0770 /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NEWSWIRE_DATA_DIR=/data \
    NEWSWIRE_WEB__HOST=0.0.0.0 \
    NEWSWIRE_WEB__PORT=8600 \
    NEWSWIRE_METRICS_PORT=9100
USER 10001:0
WORKDIR /data
VOLUME ["/data"]
# 8600: search page and HTTP API (`newswire serve`); 9100: Prometheus /metrics of any service.
EXPOSE 8600 9100
ENTRYPOINT ["newswire"]
CMD ["--help"]
