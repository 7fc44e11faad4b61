"""The twin store on the real MongoDB wire protocol (FerretDB here): fenced upserts and the
retention of model versions."""

from __future__ import annotations

import datetime as dt

from novamind.platform.mongo import database, mongo_client
from novamind.platform.settings import Settings
from workers.pipeline.twin import TwinEntry
from workers.twin.store import MODELS, TWINS, TwinStore
from workers.twin.twin import new_twin

PATIENT = "p_" + "7a" * 16
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


async def test_fenced_upserts_and_model_version_retention(settings: Settings, run_id: str) -> None:
    mongo = settings.mongo.model_copy(update={"database": f"{settings.mongo.database}_store_{run_id}"})
    client = mongo_client(mongo, app_name="twin-store-test")
    try:
        db = database(client, mongo)
        store = TwinStore(db=db, keep_versions=3)
        await store.ensure_indexes()
        entry = TwinEntry(new_twin(PATIENT), offset=10)
        for version in range(1, 8):  # seven snapshots, one save each
            entry.state.snapshots = version
            entry.snapshot_due = True
            entry.offset = 10 + version
            assert await store.save({PATIENT: entry}, now=NOW) == 1
        versions = sorted([d["version"] async for d in db[MODELS].find({"patient_id": PATIENT})])
        # Pruned in steps of keep_versions: at version 6 everything <= 3 went; 7 is new.
        assert versions == [4, 5, 6, 7]
        assert (await db[TWINS].find_one({"_id": PATIENT}))["applied_offset"] == 17

        stale = TwinEntry(new_twin(PATIENT), offset=12)  # a replica that lost the patient
        await store.save({PATIENT: stale}, now=NOW)
        assert (await db[TWINS].find_one({"_id": PATIENT}))["applied_offset"] == 17  # fenced off
        loaded = await store.load([PATIENT, "p_" + "00" * 16])
        assert list(loaded) == [PATIENT] and loaded[PATIENT].offset == 17
        await client.drop_database(mongo.database)
    finally:
        await client.close()
