-- PostgreSQL roles of Tradefleet (run once per cluster, as a superuser, with psql):
--
--   psql "$ADMIN_DSN" -v ON_ERROR_STOP=1 \
--        -v owner_password="$OWNER_PW" -v trade_recorder_password="$TR_PW" \
--        -v bot_lifecycle_password="$BL_PW" -v backup_runner_password="$BR_PW" \
--        -f deploy/postgres/roles.sql
--
-- tradefleet_owner owns the database objects and runs the migrations
-- (`trade-recorder migrate`, `bot-lifecycle migrate`, or *_MIGRATE_ON_START with
-- *_OWNER_DSN). Each worker logs in with its own role; the migrations grant it
-- SELECT/INSERT/UPDATE on its own schema's tables only (trade_recorder -> trading,
-- bot_lifecycle -> lifecycle; the audit log is insert-only). Neither can create objects
-- or touch the other's schema. backup_runner (pg_dump for backups) is a member of
-- pg_read_all_data: it reads every table and writes none.

SELECT 'CREATE ROLE tradefleet_owner LOGIN'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tradefleet_owner') \gexec
SELECT 'CREATE ROLE trade_recorder LOGIN'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'trade_recorder') \gexec
SELECT 'CREATE ROLE bot_lifecycle LOGIN'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bot_lifecycle') \gexec
SELECT 'CREATE ROLE backup_runner LOGIN'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'backup_runner') \gexec

ALTER ROLE tradefleet_owner PASSWORD :'owner_password';
ALTER ROLE trade_recorder PASSWORD :'trade_recorder_password';
ALTER ROLE bot_lifecycle PASSWORD :'bot_lifecycle_password';
ALTER ROLE backup_runner PASSWORD :'backup_runner_password';
GRANT pg_read_all_data TO backup_runner;

-- Workers run transactions with statement timeouts of their own; these bound a stuck one.
ALTER ROLE trade_recorder SET idle_in_transaction_session_timeout = '60s';
ALTER ROLE bot_lifecycle SET idle_in_transaction_session_timeout = '60s';

SELECT 'CREATE DATABASE tradefleet OWNER tradefleet_owner'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'tradefleet') \gexec

\connect tradefleet
-- The owner creates the schemas; workers only connect (and use temp tables for COPY).
GRANT CREATE, CONNECT, TEMPORARY ON DATABASE tradefleet TO tradefleet_owner;
REVOKE ALL ON DATABASE tradefleet FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE tradefleet TO trade_recorder, bot_lifecycle;
GRANT CONNECT ON DATABASE tradefleet TO backup_runner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
