"""Write the fleet's NATS users: seed files (0600) and the server's authorization block."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fleet_runtime.errors import ConfigError
from fleet_runtime.security.credentials import ensure_seeds, seed_file, write_private
from fleet_runtime.security.grants import Grant, fleet_grants
from fleet_runtime.security.serverconf import authorization_block
from fleet_runtime.topology import Topology, load_topology
from fleet_runtime.workers import WorkerSpec, discover_workers

AUTH_FILE = "nats-auth.conf"


@dataclass(frozen=True)
class Generated:
    """What ``generate`` wrote: the config file, and each user's grant and seed file."""

    config: Path
    grants: list[Grant]
    seeds: dict[str, Path]


def generate(
    out_dir: Path,
    *,
    streams_file: Path | None = None,
    topology: Topology | None = None,
    workers: Mapping[str, WorkerSpec] | None = None,
    only: Iterable[str] | None = None,
    rotate: Iterable[str] = (),
    max_partitions: int = 0,
    anonymous: tuple[str, str] | None = None,
    certificates: bool = False,
) -> Generated:
    """Write ``<user>.nk`` seeds (kept when present) and ``nats-auth.conf`` into ``out_dir``.

    ``certificates`` names the users by client certificate (``CN=<user>``, for mTLS with
    ``verify_and_map``) instead of nkeys; no seed is written then.
    """
    if topology is None:
        if streams_file is None:
            raise ConfigError("no topology given", fix="pass --streams streams.yaml")
        topology = load_topology(streams_file)
    grants = fleet_grants(
        topology,
        discover_workers() if workers is None else workers,
        only=only,
        max_partitions=max_partitions,
    )
    names = [g.user for g in grants]
    unknown = [u for u in rotate if u not in names]
    if unknown:
        raise ConfigError(
            f"cannot rotate unknown user {unknown[0]!r} (users: {', '.join(names)})",
            fix="name one of the users this command generates",
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        out_dir.chmod(0o700)
        keys = None if certificates else ensure_seeds(out_dir, names, rotate=rotate)
        config = out_dir / AUTH_FILE
        write_private(
            config,
            authorization_block(grants, keys, name=AUTH_FILE, anonymous=anonymous).encode(),
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot write the NATS credentials into {out_dir}: {exc.strerror or exc}",
            fix="pick a directory you can write (--out)",
        ) from None
    seeds = {} if certificates else {u: seed_file(out_dir, u) for u in names}
    return Generated(config, grants, seeds)
