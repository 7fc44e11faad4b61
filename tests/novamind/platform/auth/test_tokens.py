"""JWT verification with real RSA/P-256 signatures: what passes, and why each forgery fails."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from novamind.platform.auth.exceptions import Forbidden, InvalidToken, KeySetError
from novamind.platform.auth.identity import Identity, authorize
from novamind.platform.auth.keys import JwksKeys, usable_keys
from novamind.platform.auth.scopes import Scope, parse_scopes
from novamind.platform.auth.tokens import JwtVerifier, PatientIndex, principal_of
from novamind.platform.settings import AuthSettings
from tests.novamind.platform.auth.factories import AUDIENCE, EC_KID, ISSUER, TestIdentityProvider

PATIENT = "p_" + "c3" * 16
OTHER = "p_" + "d4" * 16


@pytest.fixture(scope="module")
def idp() -> TestIdentityProvider:
    return TestIdentityProvider()


def verifier(idp: TestIdentityProvider, **kwargs: Any) -> JwtVerifier:
    return JwtVerifier(keys=JwksKeys(usable_keys(idp.jwks())), issuer=ISSUER, audience=AUDIENCE, **kwargs)


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_a_valid_token_names_its_subject_patient_and_scopes(
    idp: TestIdentityProvider, alg: str
) -> None:
    identity = await verifier(idp).authenticate(idp.token(alg=alg, patient=PATIENT))

    assert identity.principal_id == "sub:app-user-42"
    assert identity.patient_id == PATIENT
    assert identity.scopes == (Scope("patient", "Observation", frozenset("cud")),)


async def test_audience_may_be_a_list(idp: TestIdentityProvider) -> None:
    identity = await verifier(idp).authenticate(idp.token(aud=["other-api", AUDIENCE]))
    assert identity.principal_id == "sub:app-user-42"


def _forgeries(idp: TestIdentityProvider) -> dict[str, tuple[str, str]]:
    now = int(time.time())
    good = idp.token(patient=PATIENT)
    head, payload, signature = good.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered["patient"] = OTHER
    tampered_payload = base64.urlsafe_b64encode(json.dumps(tampered).encode()).rstrip(b"=")
    return {
        "expired": (idp.token(exp=now - 120, iat=now - 600, nbf=now - 600), "token_expired"),
        "not yet valid": (idp.token(nbf=now + 600), "token_not_yet_valid"),
        "wrong issuer": (idp.token(iss="https://evil.example.test"), "wrong_issuer"),
        "wrong audience": (idp.token(aud="someone-else"), "wrong_audience"),
        "alg none": (idp.unsigned_token(), "algorithm_not_allowed"),
        "HS256 with the public key": (idp.hs256_with_public_key(), "algorithm_not_allowed"),
        "unknown kid": (idp.token(kid="rotated-away"), "unknown_key"),
        "RS256 header on the EC key": (idp.token(kid=EC_KID), "algorithm_not_allowed"),
        "altered claims": (f"{head}.{tampered_payload.decode()}.{signature}", "bad_signature"),
        "no exp": (idp.token(exp=None), "missing_claim"),
        "no sub": (idp.token(sub=None), "missing_claim"),
        "not a JWT": ("not-a-jwt", "malformed_token"),
        "signed by another provider": (TestIdentityProvider().token(), "bad_signature"),
    }


@pytest.mark.parametrize(
    "case",
    ["expired", "not yet valid", "wrong issuer", "wrong audience", "alg none", "HS256 with the public key",
     "unknown kid", "RS256 header on the EC key", "altered claims", "no exp", "no sub", "not a JWT",
     "signed by another provider"],
)
async def test_forged_or_stale_tokens_are_refused_with_a_reason(idp: TestIdentityProvider, case: str) -> None:
    token, reason = _forgeries(idp)[case]
    with pytest.raises(InvalidToken) as refused:
        await verifier(idp).authenticate(token)
    assert refused.value.reason == reason


async def test_missing_kid_is_refused(idp: TestIdentityProvider) -> None:
    import jwt

    token = jwt.encode(idp.claims(), idp.rsa_key, algorithm="RS256")
    with pytest.raises(InvalidToken, match="missing_kid"):
        await verifier(idp).authenticate(token)


def test_jwks_with_secret_or_private_material_is_refused(idp: TestIdentityProvider) -> None:
    with pytest.raises(KeySetError, match="private or symmetric"):
        usable_keys({"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]})
    from jwt.algorithms import RSAAlgorithm

    private = RSAAlgorithm.to_jwk(idp.rsa_key, as_dict=True)
    with pytest.raises(KeySetError, match="private"):
        usable_keys({"keys": [{**private, "kid": "leaked"}]})
    with pytest.raises(KeySetError, match="no RS256 or ES256"):
        usable_keys({"keys": [{**idp.jwks()["keys"][0], "alg": "RS512"}]})
    with pytest.raises(KeySetError):
        usable_keys(["not", "a", "jwks"])


def test_jwks_file(tmp_path: Path, idp: TestIdentityProvider) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(idp.jwks()))
    assert set(JwksKeys.from_file(path).kids) == {"rsa-2026-1", "ec-2026-1"}
    with pytest.raises(KeySetError, match="cannot read"):
        JwksKeys.from_file(tmp_path / "absent.json")


async def test_an_unknown_kid_refetches_at_most_once_per_interval(idp: TestIdentityProvider) -> None:
    rotated = TestIdentityProvider()
    published = [idp.jwks()]
    calls: list[float] = []
    now = [1000.0]

    def fetch() -> object:
        calls.append(now[0])
        return published[-1]

    keys = JwksKeys(usable_keys(idp.jwks()), fetch=fetch, refresh_s=3600, min_refresh_s=60,
                    monotonic=lambda: now[0])
    check = JwtVerifier(keys=keys, issuer=ISSUER, audience=AUDIENCE)
    published.append({"keys": [{**k, "kid": "next-" + k["kid"]} for k in rotated.jwks()["keys"]]})
    token = rotated.token(kid="next-rsa-2026-1")

    with pytest.raises(InvalidToken, match="unknown_key"):  # too soon after the last fetch
        await check.authenticate(token)
    assert calls == []
    now[0] += 61
    assert (await check.authenticate(token)).principal_id == "sub:app-user-42"  # rotated in
    for _ in range(5):  # made-up kids do not flood the provider
        with pytest.raises(InvalidToken, match="unknown_key"):
            await check.authenticate(rotated.token(kid="made-up"))
    assert calls == [1061.0]
    now[0] += 3600  # stale: refetched even for a known kid
    await check.authenticate(token)
    assert calls == [1061.0, 4661.0]


def test_scopes_v1_and_v2() -> None:
    scopes = parse_scopes("openid fhirUser launch/patient patient/*.read user/Observation.cruds "
                          "patient/Observation.rs?category=vital-signs system/Patient.bogus")
    assert scopes == (
        Scope("patient", "*", frozenset("rs")),
        Scope("user", "Observation", frozenset("cruds")),
    )
    assert parse_scopes(["patient/Observation.c", 7]) == (Scope("patient", "Observation", frozenset("c")),)
    assert parse_scopes(None) == ()
    assert Scope.parse("patient/Observation.*") == Scope("patient", "Observation", frozenset("cruds"))
    assert Scope.parse("patient/Observation.rc") is None  # v2 letters come in cruds order


def test_authorize_patient_user_and_missing_scopes() -> None:
    patient_app = Identity("sub:a", PATIENT, parse_scopes("patient/Observation.write patient/*.read"))
    assert authorize(patient_app, patient_id=PATIENT, resource="Observation", permission="c")
    with pytest.raises(Forbidden, match="patient_mismatch"):
        authorize(patient_app, patient_id=OTHER, resource="Observation", permission="c")
    reader = Identity("sub:b", PATIENT, parse_scopes("patient/Observation.read"))
    with pytest.raises(Forbidden, match="scope_denied"):
        authorize(reader, patient_id=PATIENT, resource="Observation", permission="c")
    clinician = Identity("sub:c", None, parse_scopes("user/Observation.read"))
    assert authorize(clinician, patient_id=OTHER, resource="Observation", permission="r").context == "user"
    with pytest.raises(Forbidden, match="scope_denied"):  # the intake takes patient scopes only
        authorize(clinician, patient_id=OTHER, resource="Observation", permission="r", contexts=("patient",))
    no_patient = Identity("sub:d", None, parse_scopes("patient/*.*"))
    with pytest.raises(Forbidden, match="no_patient"):
        authorize(no_patient, patient_id=PATIENT, resource="Observation", permission="c")


async def test_fhir_patient_ids_map_through_the_patient_index(
    idp: TestIdentityProvider, tmp_path: Path
) -> None:
    index = tmp_path / "patients.json"
    index.write_text(json.dumps({"Patient/123": PATIENT, "Patient/bad": "MRN-9"}))
    check = verifier(idp, patients=PatientIndex.from_file(index))
    assert (await check.authenticate(idp.token(patient="123"))).patient_id == PATIENT
    assert (await check.authenticate(idp.token(patient="bad"))).patient_id is None
    assert (await check.authenticate(idp.token(patient="999"))).patient_id is None
    assert (await check.authenticate(idp.token(patient=OTHER))).patient_id == OTHER


def test_an_email_subject_never_becomes_the_audit_actor() -> None:
    assert principal_of(ISSUER, "svc-42") == "sub:svc-42"
    actor = principal_of(ISSUER, "jane.doe@example.org")
    assert actor.startswith("sub-sha256:") and "jane" not in actor


def test_jwt_settings_must_be_complete(tmp_path: Path) -> None:
    assert AuthSettings().mode == "static"
    with pytest.raises(ValidationError, match="issuer and audience"):
        AuthSettings(mode="jwt", jwks_file=tmp_path / "k.json")
    with pytest.raises(ValidationError, match="exactly one"):
        AuthSettings(mode="jwt", issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(ValidationError, match="https"):
        AuthSettings(mode="jwt", issuer=ISSUER, audience=AUDIENCE, jwks_url="http://idp.example.test/jwks")
    ok = AuthSettings(mode="jwt", issuer=ISSUER, audience=AUDIENCE, jwks_url="https://idp.example.test/jwks")
    assert ok.jwks_url is not None
