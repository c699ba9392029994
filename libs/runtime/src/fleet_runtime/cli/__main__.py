"""`python -m fleet_runtime.cli`: the `fleet` command without its console script."""

from fleet_runtime.cli import main

main()
