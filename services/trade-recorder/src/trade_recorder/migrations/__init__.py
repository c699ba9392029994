"""Versioned SQL migrations of schema ``trading`` (applied by fleet_pgmigrate)."""
