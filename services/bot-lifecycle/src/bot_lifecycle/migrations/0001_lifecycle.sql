-- Schema lifecycle: users, bots, deployments, the audit log and the consumer checkpoint
-- of bot-lifecycle. Run by an owner role; the bot_lifecycle login role
-- (deploy/postgres/roles.sql) gets read/write on these tables only. Ids are the event's
-- ids (text): the platform's API assigns them.

CREATE TABLE lifecycle.users (
    id            text PRIMARY KEY,
    email         text UNIQUE,
    is_active     boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE lifecycle.bots (
    id                    text PRIMARY KEY,
    user_id               text NOT NULL REFERENCES lifecycle.users (id),
    name                  text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    type                  text NOT NULL CHECK (length(type) BETWEEN 1 AND 100),
    description           text,
    config                jsonb NOT NULL,
    status                text NOT NULL
                          CHECK (status IN ('created', 'deployed', 'running', 'stopped', 'deleted')),
    -- The bot's version after the last applied event (event ``version``).
    version               integer NOT NULL CHECK (version >= 1),
    tags                  text[] NOT NULL DEFAULT '{}',
    risk_level            integer NOT NULL DEFAULT 1 CHECK (risk_level >= 1),
    max_position_size     numeric CHECK (max_position_size > 0),
    current_deployment_id text,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    -- Soft delete: the row stays for audit and history.
    deleted_at            timestamptz,
    CHECK ((status = 'deleted') = (deleted_at IS NOT NULL))
);
CREATE INDEX bots_user_created_idx ON lifecycle.bots (user_id, created_at);
CREATE INDEX bots_status_idx ON lifecycle.bots (status) WHERE deleted_at IS NULL;
CREATE INDEX bots_tags_idx ON lifecycle.bots USING gin (tags);

CREATE TABLE lifecycle.bot_deployments (
    id            text PRIMARY KEY,
    bot_id        text NOT NULL REFERENCES lifecycle.bots (id),
    bot_version   integer NOT NULL,
    runtime       text NOT NULL,
    image         text,
    resources     jsonb NOT NULL DEFAULT '{}',
    environment   jsonb NOT NULL DEFAULT '{}',
    status        text NOT NULL
                  CHECK (status IN ('deployed', 'running', 'stopped', 'superseded', 'retired')),
    deployed_at   timestamptz NOT NULL,
    started_at    timestamptz,
    stopped_at    timestamptz,
    stop_reason   text,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX bot_deployments_bot_idx ON lifecycle.bot_deployments (bot_id, deployed_at);

-- One row per applied event; event_id is unique so a redelivery cannot add a second one.
CREATE TABLE lifecycle.audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE,
    event_type  text NOT NULL,
    bot_id      text NOT NULL,
    user_id     text NOT NULL,
    version     integer NOT NULL,
    old_values  jsonb,
    new_values  jsonb NOT NULL,
    occurred_at timestamptz NOT NULL,
    stream_seq  bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_bot_idx ON lifecycle.audit_log (bot_id, version);
CREATE INDEX audit_log_user_idx ON lifecycle.audit_log (user_id, occurred_at);

CREATE TABLE lifecycle.checkpoints (
    name       text PRIMARY KEY,
    stream_seq bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

GRANT USAGE ON SCHEMA lifecycle TO bot_lifecycle;
GRANT SELECT, INSERT, UPDATE ON lifecycle.users, lifecycle.bots, lifecycle.bot_deployments,
    lifecycle.checkpoints TO bot_lifecycle;
-- The audit log is append-only for the worker.
GRANT SELECT, INSERT ON lifecycle.audit_log TO bot_lifecycle;
GRANT SELECT ON lifecycle.schema_migrations TO bot_lifecycle;
