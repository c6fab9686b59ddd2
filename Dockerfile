# Reelhouse API image: `docker compose up` (see docker-compose.yml) or
#   docker build -t reelhouse . && docker run -e DATABASE_URL=... -e REDIS_URL=... -e JWT_SECRET=... -p 8000:8000 reelhouse

# hls.js for the web player: the version pinned in package-lock.json, installed with npm in a stage
# of its own; only its built files (and its licence) reach the image, which has no Node.js.
FROM node:20-slim AS player-vendor
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOST=0.0.0.0 \
    PORT=8000

RUN groupadd --system --gid 10001 reelhouse \
    && useradd --system --uid 10001 --gid reelhouse --home-dir /app --no-create-home --shell /usr/sbin/nologin reelhouse \
    && python -m venv /opt/venv

WORKDIR /app

# Dependencies first, in their own layer: rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN mkdir -p src/reelhouse \
    && touch src/reelhouse/__init__.py \
    && pip install -e . \
    && rm -rf src

# The code. The editable install points at /app/src, and the migrations are read from /app/db.
COPY litestar.toml ./
COPY db ./db
COPY src ./src
COPY media/demo ./media/demo
# The files /player/vendor/ serves (4 of hls.js's 30 MB), where the app looks for them by default
# (PLAYER_VENDOR_DIR: the checkout's node_modules/hls.js/dist), with the package's licence.
COPY --from=player-vendor /build/node_modules/hls.js/LICENSE /build/node_modules/hls.js/package.json ./node_modules/hls.js/
COPY --from=player-vendor \
    /build/node_modules/hls.js/dist/hls.min.js /build/node_modules/hls.js/dist/hls.min.js.map \
    /build/node_modules/hls.js/dist/hls.worker.js /build/node_modules/hls.js/dist/hls.worker.js.map \
    ./node_modules/hls.js/dist/
RUN python -m compileall -q src db \
    && mkdir -p /app/var/media \
    && chown -R reelhouse:reelhouse /app/var

USER reelhouse
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/health' % os.environ['PORT'], timeout=2)"

# Migrations run at start-up (DATABASE_MIGRATE_ON_STARTUP=true, under an advisory lock).
# `reelhouse run` is uvicorn with the same flags as scripts/run (SERVER_FLAGS in src/reelhouse/cli.py):
# no access log (ours logs paths without query strings, which can carry tokens), no uvicorn proxy
# headers (the app reads X-Forwarded-For itself, only from TRUSTED_PROXIES), no Server header, no per-message
# compression, protocol pings once a minute. HOST and PORT choose where; WEB_CONCURRENCY the workers.
CMD ["reelhouse", "run"]
