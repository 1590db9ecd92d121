ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}
# pg_dump / pg_restore for `sifc db backup|restore`
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sifc ./sifc
COPY api ./api
COPY migrations ./migrations
COPY data ./data
RUN pip install --no-cache-dir -e .
ENV SIFC_DATA_DIR=/app/data
EXPOSE 8000
CMD ["sifc", "serve", "--host", "0.0.0.0"]
