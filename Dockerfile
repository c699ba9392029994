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
RUN useradd --system --uid 10001 fleet
USER fleet
ENTRYPOINT ["sh", "-c", "exec fleet worker run \"$SERVICE\""]
