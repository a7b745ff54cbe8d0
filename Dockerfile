# The sms-sender image: the locked runtime dependencies in a virtualenv, run as an unprivileged
# user. `docker compose up --build` uses it for the migrate, api and worker services; on its own:
#   docker build -t sms-sender . && docker run --rm -p 8000:8000 sms-sender serve --host 0.0.0.0
# The entry point is the `sms-sender` command, so any subcommand can be given as the arguments.

# The lock files are resolved for Python 3.11, so build and run on exactly that minor version.
# Any Debian-like Python 3.11 image with `python -m venv` will do (scripts/docker-smoke builds one
# from Debian packages where no registry is reachable). No `# syntax=` line: the builder's own
# Dockerfile frontend is enough, so a build never needs to pull one.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
# Where pip finds packages, when it is not PyPI itself (a mirror or a proxy); build arguments of
# this stage only, so they never reach the final image.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
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
# (pip compiles the bytecode here, so the final image never needs to write it.) Then pip and
# setuptools leave the virtualenv: nothing at run time needs them (neither is in the lock), and
# they were a seventh of its size.
RUN pip install --no-deps . \
    && python -m pip uninstall --yes --quiet pip setuptools

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
# slim has no curl; the standard library asks the liveness route of the default command. A short
# interval makes a fresh container healthy within seconds of the API answering (engines before
# Docker 25 have no --start-interval); each check is one short-lived Python process.
HEALTHCHECK --interval=3s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["sms-sender"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
