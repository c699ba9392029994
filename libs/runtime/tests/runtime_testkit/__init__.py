"""Support code for the runtime's own tests: a real PostgreSQL test store, a test worker, waits."""
