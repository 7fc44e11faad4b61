"""A Faust worker used by the foundation test: Avro from a topic into a MongoDB collection.

Run as ``python -m tests.integration.apps.foundation_worker`` with FOUNDATION_TOPIC set.
"""

from __future__ import annotations

import os

from novamind.mongo import database, mongo_client
from novamind.settings import Settings
from schemas.codec import AvroCodec
from workers.app import create_app

settings = Settings()
app = create_app(
    settings,
    app_id=f"foundation-{os.environ['FOUNDATION_TOPIC']}",
    web_port=int(os.environ["FOUNDATION_WEB_PORT"]),
)
topic = app.topic(os.environ["FOUNDATION_TOPIC"], internal=False)
codec = AvroCodec()


@app.agent(topic)
async def store_samples(stream):  # type: ignore[no-untyped-def]
    client = mongo_client(settings.mongo, app_name="foundation-check")
    samples = database(client, settings.mongo)["foundation_samples"]
    async for value in stream:
        sample = codec.decode(value)
        await samples.replace_one(
            {"_id": sample.event_id}, {"_id": sample.event_id, **sample.model_dump(mode="json")}, upsert=True
        )


if __name__ == "__main__":
    app.main()
