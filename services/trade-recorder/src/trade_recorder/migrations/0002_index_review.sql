-- Index review: every fill writes a trades row and an orders row, and each secondary
-- index costs PostgreSQL about 1.2-1.5 µs of CPU per row written. A secondary index stays
-- only where a query that the source documents (shared seeds) or this worker run needs it.
--
-- Kept:
-- - trades_user_executed_idx (user_id, executed_at): a user's trades, newest first, paged
--   (seeds 004 get_trades_paginated: SELECT * FROM trades WHERE user_id = $1
--   AND ($2 IS NULL OR created_at < $2) ORDER BY created_at DESC LIMIT $3; executed_at is
--   a fill's time here) and the user's totals (seeds 004 get_user_stats: ... FROM trades
--   WHERE user_id = $1 AND status = 'FILLED').
-- - positions_open_key (user_id, bot_id, symbol) WHERE is_open: trade-recorder locks the
--   open positions of a batch's keys through it (store.py _LOCK_POSITIONS), and it keeps
--   one open position per key. A bot's open positions are found through it too (a bot
--   has one user): WHERE user_id = $1 AND bot_id = $2 AND is_open.
-- - positions_user_idx (user_id, is_open): the risk check of the trading execution flow
--   (seeds 004, "Risk Check -> PostgreSQL (positions, limits)"): SELECT ... FROM positions
--   WHERE user_id = $1 AND is_open.
--
-- Dropped (no query of the seeds or of the code reads by them):
-- - trades_bot_executed_idx, trades_symbol_executed_idx: per-bot performance and price
--   history are read from analytics-projector's MongoDB read models and Redis.
-- - trades_order_idx: an order's fill totals are in trading.orders (filled_quantity,
--   fill_count).
-- - orders_bot_status_idx, orders_user_idx: the seeds keep a user's orders in Redis
--   (trading:orders:{user_id}); orders is read by order_id (its primary key).
-- - positions_bot_idx: see positions_open_key.

DROP INDEX trading.trades_bot_executed_idx;
DROP INDEX trading.trades_symbol_executed_idx;
DROP INDEX trading.trades_order_idx;
DROP INDEX trading.orders_bot_status_idx;
DROP INDEX trading.orders_user_idx;
DROP INDEX trading.positions_bot_idx;
