"""Why a backup did not complete, in the runner's own terms."""

from __future__ import annotations


class BackupRefused(Exception):
    """The request cannot be carried out as asked (unknown scope, a tool that fails on the
    data): retrying changes nothing, so the request gets a failed event and is acked."""
