"""Versioned SQL migrations of schema ``lifecycle`` (applied by fleet_pgmigrate)."""
