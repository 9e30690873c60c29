# One image for every Safeguard service and the demo app; the command chooses which:
#   python -m services.flags | services.health | services.sla | services.recovery | services.notifier
#   python -m examples.demo          (the demo protected app; DEMO_COLOR=blue|green)
#   python -m shared.topics create   (the one-shot that creates the topics; then shared.kafka.acls apply)
#   python stack/compose_secrets.py  (the one-shot that makes the credentials; compose-run.sh loads them)
# Every long-running command serves GET /healthz on $PORT, which the HEALTHCHECK probes.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build: dependencies in a venv
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=120
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# the pinned dependencies first: their own layer, rebuilt only when pyproject.toml changes
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8000
RUN groupadd --system --gid 10001 safeguard \
 && useradd --system --uid 10001 --gid safeguard --home-dir /app --shell /usr/sbin/nologin safeguard
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# the source tree is the working directory, as in the native stack (python -m from the repo root);
# root-owned: the services cannot rewrite their own code
COPY shared/ /app/shared/
COPY services/ /app/services/
COPY sdk/ /app/sdk/
COPY deploy/ /app/deploy/
# (recovery's executors reuse deploy's supervisord / Docker / Kubernetes clients: RECOVERY_EXECUTOR)
COPY examples/ /app/examples/
COPY config/ /app/config/
COPY stack/health.compose.yaml stack/compose-run.sh stack/compose_secrets.py /app/stack/
COPY pyproject.toml /app/
# writable state (the sla service's Faust data: SLA_DATA_DIR=/data/sla; the flags service's kill
# journal); a named volume mounted here starts with this ownership
ENV FLAGS_JOURNAL_PATH=/data/flags/pending-off.jsonl
RUN mkdir -p /data && chown safeguard:safeguard /data
USER safeguard
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=5 \
  CMD ["python", "-c", "import os, sys, urllib.request as u; sys.exit(0 if u.urlopen('http://127.0.0.1:%s/healthz' % os.environ['PORT'], timeout=2).status == 200 else 1)"]
CMD ["python", "-m", "services.health"]
