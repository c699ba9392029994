"""Least privilege on NATS: per-worker nkey users, a publisher and an admin (`fleet security`).

``grants`` says what each user may do, ``credentials`` makes and reads the seed files,
``serverconf`` renders the server's authorization block and ``generate`` writes both.
Nothing is imported here, so a client reading its seed does not load the topology.
"""
