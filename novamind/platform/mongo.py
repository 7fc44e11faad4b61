"""The twin store's client: PyMongo's native async API (Motor is past its end of life)."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from novamind.platform.settings import MongoSettings


def mongo_client(mongo: MongoSettings, *, app_name: str) -> AsyncMongoClient[dict[str, Any]]:
    """An async client; it connects lazily, so building one does no I/O."""
    options: dict[str, Any] = {"appname": app_name, "serverSelectionTimeoutMS": 10_000, "tz_aware": True}
    if mongo.tls_ca_file:
        options.update(tls=True, tlsCAFile=str(mongo.tls_ca_file))
    return AsyncMongoClient(mongo.uri.get_secret_value(), **options)


def database(client: AsyncMongoClient[dict[str, Any]], mongo: MongoSettings) -> AsyncDatabase[dict[str, Any]]:
    return client[mongo.database]
