#!/bin/sh
# The official postgres image runs this once, on an empty data directory, from
# /docker-entrypoint-initdb.d (docker-compose.yml mounts it there and roles.sql at
# /etc/tradefleet/roles.sql). It hands the role passwords to roles.sql as psql variables,
# which the image's own *.sql handling cannot do.
set -eu

: "${TRADEFLEET_OWNER_PASSWORD:?set TRADEFLEET_OWNER_PASSWORD (see .env.example)}"
: "${TRADE_RECORDER_DB_PASSWORD:?set TRADE_RECORDER_DB_PASSWORD (see .env.example)}"
: "${BOT_LIFECYCLE_DB_PASSWORD:?set BOT_LIFECYCLE_DB_PASSWORD (see .env.example)}"
: "${BACKUP_RUNNER_DB_PASSWORD:?set BACKUP_RUNNER_DB_PASSWORD (see .env.example)}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v owner_password="$TRADEFLEET_OWNER_PASSWORD" \
    -v trade_recorder_password="$TRADE_RECORDER_DB_PASSWORD" \
    -v bot_lifecycle_password="$BOT_LIFECYCLE_DB_PASSWORD" \
    -v backup_runner_password="$BACKUP_RUNNER_DB_PASSWORD" \
    -f "${TRADEFLEET_ROLES_SQL:-/etc/tradefleet/roles.sql}"
