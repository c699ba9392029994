"""analytics-projector's MongoDB user: readWrite on its own database only (deploy/mongo).

The MongoDB-wire test server (secantusdb) checks passwords but does not enforce roles:
the role test proves what it can and skips, naming that, where the server lets the user
write elsewhere. Against a real MongoDB (``FLEET_MONGO_URL``) it runs in full.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from fleet_testing.servers import MongoServer

ROLE_SKIP = (
    "secantusdb (the MongoDB-wire test server) authenticates users but does not enforce "
    "roles: a user with readWrite on one database wrote to another; run against a real "
    "MongoDB (FLEET_MONGO_URL) to check the role"
)


def _as_user(url: str, user: str, password: str, source: str) -> MongoClient[dict[str, object]]:
    parts = urlsplit(url)
    netloc = f"{quote(user)}:{quote(password)}@{parts.netloc.rsplit('@', 1)[-1]}"
    return MongoClient(
        urlunsplit(parts._replace(netloc=netloc)),
        authSource=source,
        serverSelectionTimeoutMS=5000,
    )


@pytest.fixture
def own_user(mongo_server: MongoServer) -> Iterator[tuple[str, str, str]]:
    database = f"analytics_{uuid.uuid4().hex[:8]}"
    user, password = f"projector_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin: MongoClient[dict[str, object]] = MongoClient(mongo_server.url)
    # What deploy/mongo/initdb/10-tradefleet-users.js does for analytics_projector.
    admin[database].command(
        "createUser", user, pwd=password, roles=[{"role": "readWrite", "db": database}]
    )
    try:
        yield database, user, password
    finally:
        admin[database].command("dropUser", user)
        admin.drop_database(database)
        admin.close()


def test_the_user_writes_its_database_and_a_wrong_password_is_refused(
    mongo_server: MongoServer, own_user: tuple[str, str, str]
) -> None:
    database, user, password = own_user
    with _as_user(mongo_server.url, user, password, database) as client:
        client[database]["bot_performance"].insert_one({"_id": "b1"})
        assert client[database]["bot_performance"].count_documents({}) == 1
    with (
        _as_user(mongo_server.url, user, "wrong", database) as client,
        pytest.raises(OperationFailure, match=r"(?i)authentication failed"),
    ):
        client[database]["bot_performance"].find_one()


def test_the_user_cannot_write_another_database(
    mongo_server: MongoServer, own_user: tuple[str, str, str]
) -> None:
    database, user, password = own_user
    other = f"{database}_other"
    with _as_user(mongo_server.url, user, password, database) as client:
        try:
            client[other]["x"].insert_one({"_id": 1})
        except OperationFailure as exc:
            refused: OperationFailure | None = exc
        else:
            refused = None
            client.drop_database(other)
    if refused is None:
        pytest.skip(ROLE_SKIP)
    assert refused.code == 13, refused  # Unauthorized
