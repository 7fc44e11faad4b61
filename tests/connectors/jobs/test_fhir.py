"""The FHIR jobs' argument checks and the sync cursor protocol (no services)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from connectors.exceptions import AdapterError, JobArgumentError
from connectors.jobs.fhir import SyncCursor, fhir_sync_job, sync_types
from novamind.platform.settings import Settings
from tests.connectors.conftest import PSEUDONYM_KEY


def test_the_cursor_advances_only_on_commit(tmp_path: Path):
    cursor = SyncCursor(tmp_path / "state")
    pending = cursor.begin()
    assert cursor.state_dir.is_dir() and not pending.exists()  # first run: from the beginning
    pending.write_text(json.dumps({"Observation": "2024-05-01T13:00:00Z"}))
    assert not cursor.current.exists()  # a failed run leaves nothing behind
    cursor.commit()
    assert json.loads(cursor.current.read_text()) == {"Observation": "2024-05-01T13:00:00Z"}
    assert not pending.exists()

    again = cursor.begin()  # the next run starts from the committed cursor
    again.write_text(json.dumps({"Observation": "2024-05-02T00:00:00Z"}))
    assert cursor.begin() == again and json.loads(again.read_text())["Observation"] == "2024-05-01T13:00:00Z"


def test_sync_types_default_to_every_mapped_type():
    assert sync_types(None)[0] == "Patient" and "Observation" in sync_types([])
    assert sync_types(["Observation"]) == ("Observation",)
    with pytest.raises(JobArgumentError, match="`types`: no mapping for Claim"):
        sync_types(["Observation", "Claim"])


def test_sync_arguments_are_checked_before_any_service_is_used(tmp_path: Path):
    settings = Settings(mongo={"uri": "mongodb://127.0.0.1:1/"})
    loop = asyncio.new_event_loop()
    base = {
        "token_url": "http://t",
        "client_id": "c",
        "state_dir": tmp_path / "state",
        "key": PSEUDONYM_KEY,
        "cipher": None,
    }
    try:
        with pytest.raises(JobArgumentError, match="`base_url` must be an http"):
            fhir_sync_job(settings, loop, base_url="ftp://x", client_secret_file=tmp_path / "s", **base)
        with pytest.raises(AdapterError, match="unreadable client secret file"):
            fhir_sync_job(settings, loop, base_url="http://x", client_secret_file=tmp_path / "s", **base)
    finally:
        loop.close()
    assert not (tmp_path / "state").exists()
