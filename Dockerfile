# One image per worker: only that worker's package and its store driver are installed.
#   docker build --build-arg SERVICE=trade-recorder -t tradefleet/trade-recorder .
FROM python:3.11.16-slim-bookworm AS build
ARG SERVICE
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
WORKDIR /src
COPY . .
RUN uv sync --frozen --no-dev --no-editable --package "${SERVICE}" \
    && test -x .venv/bin/fleet

FROM python:3.11.16-slim-bookworm
ARG SERVICE
ENV SERVICE=${SERVICE} PATH=/src/.venv/bin:$PATH
COPY --from=build /src/.venv /src/.venv
COPY streams.yaml /etc/tradefleet/streams.yaml
# backup-runner runs pg_dump and pg_restore, which must be at least as new as the
# PostgreSQL server (18 in docker-compose.yml): the PostgreSQL project's apt repository
# has them for bookworm. Its settings point at them (BACKUP_RUNNER_PG_BIN_DIR).
RUN if [ "$SERVICE" = "backup-runner" ]; then \
      /usr/local/bin/python3 -c "import urllib.request as u; u.urlretrieve('https://www.postgresql.org/media/keys/ACCC4CF8.asc', '/usr/share/keyrings/pgdg.asc')" \
      && echo "deb [signed-by=/usr/share/keyrings/pgdg.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
        > /etc/apt/sources.list.d/pgdg.list \
      && apt-get update \
      && apt-get install -y --no-install-recommends postgresql-client-18 \
      && rm -rf /var/lib/apt/lists/* \
      && /usr/lib/postgresql/18/bin/pg_dump --version \
      && /usr/lib/postgresql/18/bin/pg_restore --version; \
    fi
RUN useradd --system --uid 10001 fleet
USER fleet
ENTRYPOINT ["sh", "-c", "exec fleet worker run \"$SERVICE\""]
