-- Schema trading: fills, orders, positions and the consumer checkpoint of trade-recorder.
-- Run by an owner role; the trade_recorder login role (deploy/postgres/roles.sql) gets
-- read/write on these tables only. Money and quantities are NUMERIC without a scale so
-- Decimal values round-trip exactly.

CREATE TABLE trading.trades (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trade_id        text NOT NULL UNIQUE,
    order_id        text NOT NULL,
    bot_id          text NOT NULL,
    user_id         text NOT NULL,
    symbol          text NOT NULL,
    side            text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    -- Not carried by trade.executed; kept for the seed schema's consumers.
    order_type      text,
    price           numeric NOT NULL CHECK (price > 0),
    quantity        numeric NOT NULL CHECK (quantity > 0),
    filled_quantity numeric NOT NULL CHECK (filled_quantity >= 0),
    fee             numeric NOT NULL DEFAULT 0 CHECK (fee >= 0),
    fee_currency    text NOT NULL,
    status          text NOT NULL DEFAULT 'FILLED'
                    CHECK (status IN ('PENDING', 'FILLED', 'CANCELLED', 'FAILED')),
    executed_at     timestamptz NOT NULL,
    event_id        uuid NOT NULL,
    stream_seq      bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trades_bot_executed_idx ON trading.trades (bot_id, executed_at);
CREATE INDEX trades_user_executed_idx ON trading.trades (user_id, executed_at);
CREATE INDEX trades_order_idx ON trading.trades (order_id);
CREATE INDEX trades_symbol_executed_idx ON trading.trades (symbol, executed_at);

-- One row per order: opened by its first fill (or its outcome), closed by
-- trade.completed / trade.failed. The first outcome wins; later ones change nothing.
CREATE TABLE trading.orders (
    order_id                text PRIMARY KEY,
    bot_id                  text NOT NULL,
    user_id                 text NOT NULL,
    symbol                  text NOT NULL,
    status                  text NOT NULL DEFAULT 'open'
                            CHECK (status IN ('open', 'completed', 'failed')),
    -- Sum and count of the fills recorded here.
    filled_quantity         numeric NOT NULL DEFAULT 0,
    fill_count              integer NOT NULL DEFAULT 0,
    -- As reported by trade.completed.
    reported_filled_quantity numeric,
    average_price           numeric,
    failure_reason          text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    finished_at             timestamptz
);
CREATE INDEX orders_bot_status_idx ON trading.orders (bot_id, status);
CREATE INDEX orders_user_idx ON trading.orders (user_id);

-- A position per (user, bot, symbol) lifetime: at most one open row per key; a position
-- that goes flat (or flips) is closed and kept as history.
CREATE TABLE trading.positions (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id             text NOT NULL,
    bot_id              text NOT NULL,
    symbol              text NOT NULL,
    side                text NOT NULL CHECK (side IN ('LONG', 'SHORT')),
    -- Open quantity (always >= 0; the side gives the direction); 0 once closed.
    quantity            numeric NOT NULL CHECK (quantity >= 0),
    -- Volume-weighted entry price of the open quantity, 18 decimal places.
    average_entry_price numeric NOT NULL,
    -- Largest open quantity the position reached.
    max_quantity        numeric NOT NULL,
    realized_pnl        numeric NOT NULL DEFAULT 0,
    fees                numeric NOT NULL DEFAULT 0,
    fill_count          integer NOT NULL DEFAULT 0,
    is_open             boolean NOT NULL DEFAULT true,
    opened_at           timestamptz NOT NULL,
    closed_at           timestamptz,
    last_trade_id       text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (is_open = (closed_at IS NULL))
);
CREATE UNIQUE INDEX positions_open_key ON trading.positions (user_id, bot_id, symbol)
    WHERE is_open;
CREATE INDEX positions_user_idx ON trading.positions (user_id, is_open);
CREATE INDEX positions_bot_idx ON trading.positions (bot_id, is_open);

-- Highest stream sequence applied per (consumer, partition), written in the same
-- transaction as the effects.
CREATE TABLE trading.checkpoints (
    name       text PRIMARY KEY,
    stream_seq bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

GRANT USAGE ON SCHEMA trading TO trade_recorder;
GRANT SELECT, INSERT, UPDATE ON trading.trades, trading.orders, trading.positions,
    trading.checkpoints TO trade_recorder;
GRANT SELECT ON trading.schema_migrations TO trade_recorder;
