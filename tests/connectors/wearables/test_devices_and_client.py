"""Device registry, encrypted token store, sync windows and the Fitbit client (real HTTP)."""

import json
import os
from datetime import UTC, date, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from connectors.exceptions import DeviceNotLinked, TokenError
from connectors.http import RetryPolicy
from connectors.wearables.devices import DeviceRegistry, OAuthToken, TokenStore, sync_window
from connectors.wearables.fitbit import FitbitClient
from tests.connectors.conftest import PSEUDONYM_KEY, RecordingSleep

PID = "p_" + "a" * 32
TOKEN_KEY = bytes(range(32))


def test_registry_links_and_persists(tmp_path):
    path = tmp_path / "devices.json"
    reg = DeviceRegistry(key=PSEUDONYM_KEY, path=path)
    dev = reg.link(PID, "fitbit", "7QX9AB", time_zone="Europe/Berlin")
    assert dev.device_ref.startswith("d_") and "7QX9AB" not in dev.device_ref
    reg.mark_synced(PID, dev.device_ref, date(2024, 5, 1))
    again = DeviceRegistry(key=PSEUDONYM_KEY, path=path)
    assert again.get(PID, dev.device_ref).last_synced == date(2024, 5, 1)
    with pytest.raises(DeviceNotLinked):
        again.get("p_" + "b" * 32, dev.device_ref)
    again.unlink(PID, dev.device_ref)
    with pytest.raises(DeviceNotLinked):
        again.get(PID, dev.device_ref)


def test_tokens_are_encrypted_at_rest(tmp_path):
    path = tmp_path / "tokens.json"
    store = TokenStore(key=TOKEN_KEY, path=path)
    token = OAuthToken("access-SECRET", "refresh-SECRET", datetime(2030, 1, 1, tzinfo=UTC))
    store.put("d_1", token)
    raw = path.read_text()
    assert "SECRET" not in raw and json.loads(raw)["d_1"]["key_id"] == "k1"
    assert TokenStore(key=TOKEN_KEY, path=path).get("d_1") == token
    with pytest.raises(TokenError):
        TokenStore(key=os.urandom(32), path=path).get("d_1")
    sealed = json.loads(raw)
    sealed["d_2"] = sealed.pop("d_1")  # moved to another device: AAD mismatch
    path.write_text(json.dumps(sealed))
    with pytest.raises(TokenError):
        TokenStore(key=TOKEN_KEY, path=path).get("d_2")


def test_sync_window():
    today = date(2024, 5, 10)
    assert sync_window(None, today, 3) == [date(2024, 5, 8), date(2024, 5, 9), today]
    assert sync_window(date(2024, 5, 9), today, 7) == [date(2024, 5, 9), today]
    assert sync_window(date(2024, 1, 1), today, 2) == [date(2024, 5, 9), today]
    with pytest.raises(ValueError):
        sync_window(None, today, 0)


def fitbit_app(state, fixtures):
    heart = json.loads((fixtures / "fitbit/heart_2024-03-10.json").read_text())

    async def token(request):
        form = await request.post()
        state["refreshes"].append(form["refresh_token"])
        n = len(state["refreshes"])
        return web.json_response(
            {
                "access_token": f"fresh{n}",
                "refresh_token": f"r{n}",
                "expires_in": 28800,
                "token_type": "Bearer",
                "scope": "heartrate sleep activity",
            }
        )

    async def api(request):
        state["calls"].append(request.path)
        if request.headers.get("Authorization", "").split()[-1] not in state["valid"]:
            return web.json_response({"errors": [{"errorType": "expired_token"}]}, status=401)
        if state["throttle"]:
            state["throttle"] -= 1
            return web.json_response(
                {"errors": [{"errorType": "system"}]}, status=429, headers={"Retry-After": "3"}
            )
        path = request.path
        day = path.split("/date/")[1][:10]
        if "heart" in path:
            return web.json_response(
                {**heart, "activities-heart": [{**heart["activities-heart"][0], "dateTime": day}]}
            )
        if "steps" in path:
            return web.json_response(
                {
                    "activities-steps": [{"dateTime": day, "value": "0"}],
                    "activities-steps-intraday": {"dataset": []},
                }
            )
        if "hrv" in path:
            return web.json_response({"hrv": [{"dateTime": day, "value": {"dailyRmssd": 40}}]})
        return web.json_response({"sleep": []})

    app = web.Application()
    app.router.add_post("/oauth2/token", token)
    app.router.add_get("/{tail:.*}", api)
    return app


async def test_fitbit_client_refreshes_throttles_and_syncs(http_server_factory, fixtures, tmp_path):
    state = {"refreshes": [], "calls": [], "valid": {"fresh1", "fresh2"}, "throttle": 1}
    base = await http_server_factory(fitbit_app(state, fixtures))
    reg = DeviceRegistry(key=PSEUDONYM_KEY)
    dev = reg.link(PID, "fitbit", "7QX9AB", time_zone="America/New_York")
    tokens = TokenStore(key=TOKEN_KEY)
    tokens.put(dev.device_ref, OAuthToken("old", "r0", datetime.now(UTC) - timedelta(hours=1)))
    sleep = RecordingSleep()
    async with aiohttp.ClientSession() as session:
        client = FitbitClient(
            session=session,
            registry=reg,
            tokens=tokens,
            client_id="cid",
            client_secret="csecret",
            base_url=base,
            policy=RetryPolicy(base=0.01),
            sleep=sleep,
        )
        samples = await client.sync(PID, dev.device_ref, today=date(2024, 3, 11), days_to_sync=2)
        assert state["refreshes"] == ["r0"]  # expired token refreshed before the first call
        assert sleep.delays == [3.0]  # 429 Retry-After honoured
        assert tokens.get(dev.device_ref).access_token == "fresh1"
        assert reg.get(PID, dev.device_ref).last_synced == date(2024, 3, 11)
        days = {s["event_time"].date() for s in samples if s["metric"] == "RESTING_HEART_RATE"}
        assert len(days) == 2
        assert all(s["device_id"] == dev.device_ref and s["source"] == "fitbit" for s in samples)

        state["valid"] = {"fresh2"}  # server revokes the token: 401 -> one refresh
        again = await client.sync(PID, dev.device_ref, today=date(2024, 3, 11), days_to_sync=2)
        assert state["refreshes"] == ["r0", "r1"]
        assert {s["event_id"] for s in again} <= {s["event_id"] for s in samples}

        with pytest.raises(DeviceNotLinked):
            await client.sync("p_" + "c" * 32, dev.device_ref, today=date(2024, 3, 11))
