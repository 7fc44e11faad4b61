"""Keys fetched from a JWKS URL (a real HTTP server on 127.0.0.1): start, rotation, outages."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from novamind.platform.auth.exceptions import InvalidToken, KeySetError
from novamind.platform.auth.keys import JwksKeys
from novamind.platform.auth.tokens import JwtVerifier
from novamind.platform.settings import AuthSettings
from tests.novamind.platform.auth.factories import AUDIENCE, ISSUER, TestIdentityProvider


class Published:
    """What the test IdP serves at /jwks: a document, or broken bytes."""

    def __init__(self) -> None:
        self.body = b"{}"
        self.requests = 0


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, Published]]:
    published = Published()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            published.requests += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(published.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks", published
    finally:
        server.shutdown()
        server.server_close()


async def test_keys_from_a_url_follow_a_rotation(jwks_server: tuple[str, Published]) -> None:
    url, published = jwks_server
    old, new = TestIdentityProvider(), TestIdentityProvider()
    published.body = json.dumps(old.jwks()).encode()
    settings = AuthSettings(mode="jwt", issuer=ISSUER, audience=AUDIENCE, jwks_url=url, jwks_min_refresh_s=0)
    verifier = JwtVerifier.from_settings(settings)
    assert published.requests == 1
    assert (await verifier.authenticate(old.token())).principal_id == "sub:app-user-42"

    rotated = {"keys": [{**k, "kid": "2027-" + k["kid"]} for k in new.jwks()["keys"]]}
    published.body = json.dumps(rotated).encode()
    token = new.token(kid="2027-rsa-2026-1")
    assert (await verifier.authenticate(token)).principal_id == "sub:app-user-42"
    assert published.requests == 2
    with pytest.raises(InvalidToken, match="unknown_key"):  # the retired key is gone
        await verifier.authenticate(old.token())

    published.body = b"<html>maintenance</html>"  # an outage keeps the keys we have
    with pytest.raises(InvalidToken, match="unknown_key"):
        await verifier.authenticate(new.token(kid="never-published"))
    assert (await verifier.authenticate(token)).principal_id == "sub:app-user-42"


def test_an_unreachable_or_broken_jwks_url_fails_at_start(jwks_server: tuple[str, Published]) -> None:
    url, published = jwks_server
    published.body = b"not json"
    with pytest.raises(KeySetError, match="cannot fetch"):
        JwksKeys.from_url(url)
    published.body = json.dumps({"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}).encode()
    with pytest.raises(KeySetError, match="symmetric"):
        JwksKeys.from_url(url)
    with pytest.raises(KeySetError, match="cannot fetch"):
        JwksKeys.from_url("http://127.0.0.1:9/jwks", timeout_s=2)
