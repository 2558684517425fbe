# One image for the five services; the command picks the service:
#   docker run helpdesk:0.1.0 python -m services.tickets
# Why one image: the services share contracts/ and runtime/ and the same pinned
# dependencies, so five images would be five copies of the same layers to build,
# scan and roll out. Each Deployment still runs one service, with its own
# settings, resources, probes, scaling and network policy.
#
# Runs as an unprivileged user (uid 10001) on a read-only root filesystem: the
# only writable places are /data (SQLite files when no PostgreSQL URL is given)
# and /tmp, which Kubernetes and compose mount as volumes. Every server listens on
# 0.0.0.0 here (the code's default, 127.0.0.1, is unreachable from outside a container).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.lock pyproject.toml /src/
# Only what the services import, at the versions of requirements.lock (the lock also
# pins the test tools, which stay out of the image).
RUN python -m venv /opt/venv \
 && python -c "import tomllib; print('\\n'.join(tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']))" \
    > /src/runtime-requirements.txt
RUN /opt/venv/bin/pip install -c /src/requirements.lock -r /src/runtime-requirements.txt
COPY contracts /app/contracts
COPY runtime /app/runtime
COPY services /app/services
# Compiled once here: the root filesystem is read-only at run time.
RUN /opt/venv/bin/python -m compileall -q /app

FROM python:3.11-slim-bookworm
RUN groupadd --gid 10001 helpdesk \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin helpdesk \
 && mkdir -p /data && chown 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    INTAKE_HTTP_HOST=0.0.0.0 \
    TICKETS_HTTP_HOST=0.0.0.0 \
    ROUTING_HTTP_HOST=0.0.0.0 \
    ESCALATION_HTTP_HOST=0.0.0.0 \
    NOTIFY_HTTP_HOST=0.0.0.0 \
    INTAKE_SMTP_HOST=0.0.0.0 \
    INTAKE_DATABASE_URL=sqlite+aiosqlite:////data/intake.db \
    TICKETS_DATABASE_URL=sqlite+aiosqlite:////data/tickets.db \
    ROUTING_DATABASE_URL=sqlite+aiosqlite:////data/routing.db \
    ESCALATION_DATABASE_URL=sqlite+aiosqlite:////data/escalation.db \
    NOTIFY_DATABASE_URL=sqlite+aiosqlite:////data/notify.db
WORKDIR /app
VOLUME ["/data"]
USER 10001:10001
# HTTP of the five services, and intake's SMTP receiver (the e-mail channel).
EXPOSE 8001 8002 8003 8004 8005 2526
# The orchestrator probes /healthz and /readyz on the service's port; compose sets a healthcheck per service.
CMD ["python", "-m", "services.intake"]
