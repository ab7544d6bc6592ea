# connect-bot: Slack chat-ops for Posit Connect administrators.
#   docker build -t connect-bot .
#   docker run --env-file bot.env -v connect-bot-data:/data -p 3000:3000 connect-bot
# tests/test_docker_install.py reproduces these steps without a Docker engine; keep them in step.
# `make image-test` (tests/image/) builds the image and runs it, replicas and `docker stop` included.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: the wheel only, so no build tools or sources reach the final image
FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
COPY pyproject.toml README.md LICENSE requirements.lock ./
COPY bot ./bot
RUN python -m pip wheel --no-cache-dir --no-deps . -w /wheels \
    && cp requirements.lock /wheels/

# ---- run
FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/connect-bot \
    PATH=/opt/connect-bot/bin:$PATH

# Install the locked dependencies (with the PostgreSQL driver; every file's hash checked), then
# the wheel alone, into a venv owned by root so the bot cannot modify its own code.
COPY --from=builder /wheels /tmp/wheels
RUN python -m venv /opt/connect-bot \
    && /opt/connect-bot/bin/pip install --no-cache-dir --require-hashes --no-deps \
       -r /tmp/wheels/requirements.lock \
    && /opt/connect-bot/bin/pip install --no-cache-dir --no-deps /tmp/wheels/connect_bot-*.whl \
    && /opt/connect-bot/bin/pip check \
    && rm -rf /tmp/wheels

COPY docker/healthcheck.py /opt/connect-bot/healthcheck.py

# A fixed numeric uid lets Kubernetes verify runAsNonRoot and makes volume ownership predictable.
RUN groupadd --system --gid 10001 connect-bot \
    && useradd --system --uid 10001 --gid connect-bot --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin connect-bot \
    && mkdir /data && chown connect-bot:connect-bot /data

ENV BOT_DATABASE_URL=sqlite:////data/connect-bot.db \
    PORT=3000
VOLUME /data
WORKDIR /data
USER 10001:10001
EXPOSE 3000

# /healthz is served in HTTP and Socket Mode alike; the probe honours BOT_HEALTH_PORT, else PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/opt/connect-bot/healthcheck.py"]

# No init wrapper: `serve` runs as PID 1 and handles SIGTERM itself (`docker stop` sends it).
CMD ["connect-bot", "serve"]
