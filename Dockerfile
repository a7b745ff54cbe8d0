# syntax=docker/dockerfile:1
# The sms-sender image: the locked runtime dependencies in a virtualenv, run as an unprivileged
# user. `docker compose up --build` uses it for the migrate, api and worker services; on its own:
#   docker build -t sms-sender . && docker run --rm -p 8000:8000 sms-sender serve --host 0.0.0.0
# The entry point is the `sms-sender` command, so any subcommand can be given as the arguments.

# The lock files are resolved for Python 3.11, so build and run on exactly that minor version.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first and alone, so this layer is rebuilt only when the lock file changes;
# --require-hashes refuses any file whose hash is not the one recorded in the lock.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
# --no-deps: every dependency came from the lock above; pip only fetches the build backend
# (setuptools, per pyproject.toml) into a throwaway build environment.
COPY pyproject.toml README.md ./
COPY sms_sender ./sms_sender
# (pip compiles the bytecode here, so the final image never needs to write it.)
RUN pip install --no-deps .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SMS_SENDER_DATABASE_URL=sqlite:////var/lib/sms-sender/sms_sender.db
# A fixed numeric uid lets Kubernetes check runAsNonRoot without reading /etc/passwd.
RUN groupadd --system --gid 10001 sms-sender \
    && useradd --system --uid 10001 --gid sms-sender --no-create-home \
       --home-dir /var/lib/sms-sender --shell /usr/sbin/nologin sms-sender \
    && install -d -o sms-sender -g sms-sender -m 0750 /var/lib/sms-sender
COPY --from=builder /opt/venv /opt/venv
WORKDIR /var/lib/sms-sender
# Only the SQLite default writes here (mount a volume to keep it); with PostgreSQL the container
# needs no writable storage at all.
USER 10001:10001
EXPOSE 8000
# slim has no curl; the standard library asks the liveness route of the default command.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["sms-sender"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
