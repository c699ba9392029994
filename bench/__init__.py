"""Tradefleet benchmark harness: workers against the physical limit and a naive baseline."""
