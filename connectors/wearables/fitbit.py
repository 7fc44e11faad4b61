"""Fitbit Web API JSON -> BiometricSample dicts.

Fitbit dates and times are the user's local wall clock; they are converted to UTC with the
patient's IANA time zone. Sleep stages come at 30 s granularity as stage episodes
(``levels.data``); ``shortData`` wake overlays are not applied. HRV ``dailyRmssd`` is RMSSD
(never labelled SDNN); ``deepRmssd`` is not emitted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import aiohttp

from connectors.exceptions import AdapterError, DeviceNotLinked, HttpStatusError, TokenError
from connectors.http import RetryPolicy, Sleep, request_json
from connectors.records import biometric_sample
from connectors.wearables.common import (
    arr,
    local_to_utc,
    number,
    obj,
    parse_date,
    parse_local,
    zone,
)
from connectors.wearables.devices import DeviceRegistry, OAuthToken, TokenStore, sync_window

SOURCE = "fitbit"
SLEEP_LEVELS = {"wake": "AWAKE", "light": "LIGHT", "deep": "DEEP", "rem": "REM",
                "asleep": "ASLEEP", "awake": "AWAKE", "restless": "AWAKE"}
Samples = list[dict[str, Any]]


class _Emitter:
    def __init__(self, patient_id: str, device_id: str, received_time: datetime | None) -> None:
        self.patient_id, self.device_id, self.received = patient_id, device_id, received_time

    def __call__(self, metric: str, value: float, when: datetime, **extra: Any) -> dict[str, Any]:
        return biometric_sample(patient_id=self.patient_id, source=SOURCE,
                                device_id=self.device_id, metric=metric, value=value,
                                event_time=when, received_time=self.received, **extra)


def parse_heart(payload: Any, *, patient_id: str, device_id: str, tz: str,
                received_time: datetime | None = None) -> Samples:
    """``activities-heart`` (resting HR per day) and ``activities-heart-intraday`` dataset."""
    zi, emit, out = zone(tz), _Emitter(patient_id, device_id, received_time), []
    body = obj(payload, "$")
    days = arr(body.get("activities-heart", []), "$['activities-heart']")
    for i, day in enumerate(days):
        path = f"$['activities-heart'][{i}]"
        when = local_to_utc(parse_date(obj(day, path).get("dateTime"), f"{path}.dateTime"),
                            time(0), zi)
        resting = obj(day.get("value", {}), f"{path}.value").get("restingHeartRate")
        if resting is not None:
            out.append(emit("RESTING_HEART_RATE",
                            number(resting, f"{path}.value.restingHeartRate"), when,
                            duration_seconds=86400))
    intraday = body.get("activities-heart-intraday")
    if intraday:
        out.extend(_intraday(intraday, days, "activities-heart", "HEART_RATE", zi, emit))
    return out


def parse_steps(payload: Any, *, patient_id: str, device_id: str, tz: str,
                received_time: datetime | None = None) -> Samples:
    """``activities-steps-intraday`` dataset; each sample spans ``datasetInterval`` minutes."""
    body = obj(payload, "$")
    days = arr(body.get("activities-steps", []), "$['activities-steps']")
    intraday = body.get("activities-steps-intraday")
    if not intraday:
        return []
    return _intraday(intraday, days, "activities-steps", "STEPS", zone(tz),
                     _Emitter(patient_id, device_id, received_time))


def _intraday(intraday: Any, days: list[Any], key: str, metric: str, zi: Any,
              emit: Callable[..., dict[str, Any]]) -> Samples:
    base = f"$['{key}-intraday']"
    block = obj(intraday, base)
    dataset = arr(block.get("dataset", []), f"{base}.dataset")
    if not dataset:
        return []
    if len(days) != 1:
        raise AdapterError("intraday data needs exactly one day in the summary", path=f"$['{key}']")
    day = parse_date(obj(days[0], f"$['{key}'][0]").get("dateTime"), f"$['{key}'][0].dateTime")
    interval = int(number(block.get("datasetInterval", 1), f"{base}.datasetInterval"))
    unit = str(block.get("datasetType", "minute"))
    seconds = interval * {"second": 1, "minute": 60}.get(unit, 60)
    out = []
    for i, point in enumerate(dataset):
        path = f"{base}.dataset[{i}]"
        point = obj(point, path)
        try:
            clock = time.fromisoformat(str(point.get("time")))
        except ValueError as exc:
            raise AdapterError(f"bad time {point.get('time')!r}", path=f"{path}.time") from exc
        value = number(point.get("value"), f"{path}.value")
        extra = {"duration_seconds": seconds} if metric == "STEPS" else {}
        out.append(emit(metric, value, local_to_utc(day, clock, zi), **extra))
    return out


def parse_hrv(payload: Any, *, patient_id: str, device_id: str, tz: str,
              received_time: datetime | None = None) -> Samples:
    """``hrv[].value.dailyRmssd`` -> HRV_RMSSD at the local start of ``dateTime``."""
    zi, emit = zone(tz), _Emitter(patient_id, device_id, received_time)
    out = []
    for i, item in enumerate(arr(obj(payload, "$").get("hrv", []), "$.hrv")):
        path = f"$.hrv[{i}]"
        item = obj(item, path)
        value = obj(item.get("value"), f"{path}.value")
        if value.get("dailyRmssd") is None:
            continue
        day = parse_date(item.get("dateTime"), f"{path}.dateTime")
        out.append(emit("HRV_RMSSD", number(value["dailyRmssd"], f"{path}.value.dailyRmssd"),
                        local_to_utc(day, time(0), zi)))
    return out


def parse_sleep(payload: Any, *, patient_id: str, device_id: str, tz: str,
                received_time: datetime | None = None) -> Samples:
    """Sleep log v1.2 ``sleep[].levels.data`` stage episodes -> SLEEP_STAGE samples."""
    zi, emit = zone(tz), _Emitter(patient_id, device_id, received_time)
    out = []
    for i, log in enumerate(arr(obj(payload, "$").get("sleep", []), "$.sleep")):
        base = f"$.sleep[{i}].levels.data"
        levels = obj(obj(log, f"$.sleep[{i}]").get("levels"), f"$.sleep[{i}].levels")
        for j, seg in enumerate(arr(levels.get("data", []), base)):
            path = f"{base}[{j}]"
            seg = obj(seg, path)
            stage = SLEEP_LEVELS.get(str(seg.get("level")))
            if stage is None:
                raise AdapterError(f"unknown sleep level {seg.get('level')!r}",
                                   path=f"{path}.level")
            seconds = number(seg.get("seconds"), f"{path}.seconds")
            if seconds <= 0 or seconds != int(seconds):
                raise AdapterError("stage seconds must be a positive integer",
                                   path=f"{path}.seconds")
            when = parse_local(str(seg.get("dateTime")), zi, f"{path}.dateTime")
            out.append(emit("SLEEP_STAGE", seconds, when, duration_seconds=int(seconds),
                            sleep_stage=stage))
    return out


PARSERS = {"activities-heart": parse_heart, "activities-steps": parse_steps, "hrv": parse_hrv,
           "sleep": parse_sleep}


def parse_fitbit(payload: Any, *, patient_id: str, device_id: str, tz: str,
                 received_time: datetime | None = None) -> Samples:
    """Dispatch on the top-level key of any supported Fitbit response."""
    body = obj(payload, "$")
    parser = next((p for key, p in PARSERS.items() if key in body), None)
    if parser is None:
        raise AdapterError(f"unsupported Fitbit payload with keys {sorted(body)[:5]}", path="$")
    return parser(body, patient_id=patient_id, device_id=device_id, tz=tz,
                  received_time=received_time)


class FitbitClient:
    """Fetch one patient's Fitbit days (heart, steps, HRV, sleep) and map them to samples.

    Tokens are refreshed when expired (or on 401); 429/5xx honour ``Retry-After``.
    """

    ENDPOINTS = ("/1/user/-/activities/heart/date/{day}/1d/1min.json",
                 "/1/user/-/activities/steps/date/{day}/1d/15min.json",
                 "/1/user/-/hrv/date/{day}.json",
                 "/1.2/user/-/sleep/date/{day}.json")

    def __init__(self, *, session: aiohttp.ClientSession, registry: DeviceRegistry,
                 tokens: TokenStore, client_id: str, client_secret: str,
                 base_url: str = "https://api.fitbit.com", token_url: str | None = None,
                 policy: RetryPolicy = RetryPolicy(), sleep: Sleep = asyncio.sleep) -> None:
        self.session, self.registry, self.tokens = session, registry, tokens
        self.auth = aiohttp.BasicAuth(client_id, client_secret)
        self.base_url = base_url.rstrip("/")
        self.token_url = token_url or f"{self.base_url}/oauth2/token"
        self.policy, self.sleep = policy, sleep

    async def _refresh(self, ref: str, token: OAuthToken) -> OAuthToken:
        form = {"grant_type": "refresh_token", "refresh_token": token.refresh_token}
        try:
            body = await request_json(self.session, "POST", self.token_url, data=form,
                                      auth=self.auth, policy=self.policy, sleep=self.sleep)
        except HttpStatusError as exc:
            raise TokenError(f"refresh refused for device {ref}: HTTP {exc.status}") from exc
        fresh = OAuthToken(str(body["access_token"]),
                           str(body.get("refresh_token", token.refresh_token)),
                           datetime.now(UTC) + timedelta(seconds=float(body["expires_in"])),
                           str(body.get("scope", token.scope)))
        self.tokens.put(ref, fresh)
        return fresh

    async def _get(self, ref: str, path: str) -> Any:
        token = self.tokens.get(ref)
        if token.expired(datetime.now(UTC)):
            token = await self._refresh(ref, token)
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {token.access_token}"}
            try:
                return await request_json(self.session, "GET", self.base_url + path,
                                          headers=headers, policy=self.policy, sleep=self.sleep)
            except HttpStatusError as exc:
                if exc.status != 401 or attempt:
                    raise
                token = await self._refresh(ref, token)
        raise TokenError(f"device {ref} keeps answering 401")  # pragma: no cover

    async def sync(self, patient_id: str, ref: str, *, today: date,
                   days_to_sync: int = 7) -> Samples:
        """Fetch the sync window for a linked device; unlinked devices raise DeviceNotLinked."""
        device = self.registry.get(patient_id, ref)
        if device.vendor != SOURCE:
            raise DeviceNotLinked(f"device {ref} is a {device.vendor} device, not fitbit")
        out: Samples = []
        received = datetime.now(UTC)
        for day in sync_window(device.last_synced, today, days_to_sync):
            for template in self.ENDPOINTS:
                payload = await self._get(ref, template.format(day=day.isoformat()))
                out.extend(parse_fitbit(payload, patient_id=patient_id, device_id=ref,
                                        tz=device.time_zone, received_time=received))
            self.registry.mark_synced(patient_id, ref, day)
        return out
