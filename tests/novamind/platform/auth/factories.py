"""A test identity provider: real RSA and P-256 keys, a JWKS, and signed access tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.example.test/realms/novamind"
AUDIENCE = "novamind-intake"
RSA_KID, EC_KID = "rsa-2026-1", "ec-2026-1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TestIdentityProvider:
    """Signs tokens like an OIDC provider would; ``jwks()`` is what it publishes."""

    __test__ = False
    rsa_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    ec_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    issuer: str = ISSUER
    audience: str = AUDIENCE

    def jwks(self) -> dict[str, Any]:
        rsa_jwk = RSAAlgorithm.to_jwk(self.rsa_key.public_key(), as_dict=True)
        ec_jwk = ECAlgorithm.to_jwk(self.ec_key.public_key(), as_dict=True)
        return {
            "keys": [
                {**rsa_jwk, "kid": RSA_KID, "use": "sig", "alg": "RS256"},
                {**ec_jwk, "kid": EC_KID, "use": "sig"},
            ]
        }

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": "app-user-42",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "scope": "openid launch/patient patient/Observation.write",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, *, alg: str = "RS256", kid: str | None = None, **overrides: Any) -> str:
        key: Any = self.rsa_key if alg == "RS256" else self.ec_key
        default_kid = RSA_KID if alg == "RS256" else EC_KID
        return jwt.encode(self.claims(**overrides), key, algorithm=alg, headers={"kid": kid or default_kid})

    def unsigned_token(self, **overrides: Any) -> str:
        """``alg: none``: a token anybody can write."""
        header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": RSA_KID}).encode())
        return f"{header}.{_b64(json.dumps(self.claims(**overrides)).encode())}."

    def hs256_with_public_key(self, **overrides: Any) -> str:
        """The key-confusion attack: HMAC keyed with the published RSA public key."""
        secret = self.rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": RSA_KID}).encode())
        payload = _b64(json.dumps(self.claims(**overrides)).encode())
        signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"
