ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim
# The web application's MapLibre GL JS and the API documentation's Swagger UI and ReDoc, from the npm
# registry at build time (web/package-lock.json); the service serves them itself (api/routers/web.py).
FROM ${NODE_IMAGE} AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM ${PYTHON_IMAGE}
# pg_dump / pg_restore for `sifc db backup|restore`
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
# The locked environment (exact versions, hashes), the same as make run and CI install (make lock refreshes it).
COPY requirements/lock.txt ./requirements/lock.txt
RUN pip install --no-cache-dir --require-hashes -r requirements/lock.txt
COPY sifc ./sifc
COPY api ./api
COPY cli ./cli
COPY migrations ./migrations
COPY data ./data
COPY web/src ./web/src
COPY --from=web /web/node_modules ./web/node_modules
RUN pip install --no-cache-dir --no-deps -e .
ENV SIFC_DATA_DIR=/app/data
EXPOSE 8000
CMD ["sifc", "serve", "--host", "0.0.0.0"]
