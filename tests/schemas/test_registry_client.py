"""The registry client turns every answer that is not the Confluent API's into a typed error."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from schemas.codec import AvroCodec
from schemas.exceptions import (
    BadRegistryAnswer,
    IncompatibleSchema,
    RegistryError,
    SchemaNotFound,
    UnknownSchemaId,
)
from schemas.registry import ConfluentRegistryClient
from tests.schemas.conftest import sample_records


class _Scripted(BaseHTTPRequestHandler):
    """Answers every request with the (status, content type, body) of ``answer``."""

    answer: tuple[int, str, bytes] = (200, "application/json", b"{}")

    def _reply(self) -> None:
        status, content_type, body = self.answer
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._reply()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._reply()

    do_PUT = do_POST

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[tuple[ConfluentRegistryClient, type[_Scripted]]]:
    handler = type("Handler", (_Scripted,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ConfluentRegistryClient(url=f"http://127.0.0.1:{server.server_address[1]}", timeout=2), handler
    server.shutdown()


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        ((200, "text/html", b"<html>login</html>"), BadRegistryAnswer, "not JSON"),
        ((200, "application/json", b'{"version": 3}'), BadRegistryAnswer, "no int 'id'"),
        ((200, "application/json", b'{"id": "7"}'), BadRegistryAnswer, "no int 'id'"),
        ((200, "application/json", b"[1, 2]"), BadRegistryAnswer, "no int 'id'"),
        ((409, "application/json", b'{"error_code": 409, "message": "Incompatible"}'), IncompatibleSchema,
         "HTTP 409 Incompatible"),
        ((500, "text/plain", b"boom"), RegistryError, "HTTP 500"),
        ((404, "application/json", b'{"error_code": 40401, "message": "no subject"}'), SchemaNotFound,
         "no subject"),
    ],
)
def test_bad_answers_to_register_are_typed(scripted, answer, error, message) -> None:
    client, handler = scripted
    handler.answer = answer
    with pytest.raises(error, match=message) as raised:
        client.register("twin-alerts-value", '{"type": "string"}')
    assert isinstance(raised.value, RegistryError)


def test_bad_answers_to_the_admin_calls_are_typed(scripted) -> None:
    client, handler = scripted
    handler.answer = (200, "application/json", b'{"versions": []}')
    with pytest.raises(BadRegistryAnswer, match="list of version numbers"):
        client.versions("s")
    with pytest.raises(BadRegistryAnswer, match="did not take compatibility BACKWARD"):
        client.set_compatibility("s", "BACKWARD")
    with pytest.raises(BadRegistryAnswer, match="no bool 'is_compatible'"):
        client.is_compatible("s", "{}")
    with pytest.raises(RegistryError, match="unknown compatibility level"):
        client.set_compatibility("s", "SOMETIMES")
    handler.answer = (404, "application/json", b'{"error_code": 40401}')
    assert client.versions("s") == [] and client.latest("s") is None and client.compatibility("s") is None
    assert client.lookup("s", "{}") is None and client.is_compatible("s", "{}")


def test_a_decoder_meeting_a_bad_registry_schema_raises_a_decode_error(scripted) -> None:
    """The id resolves, but not to a record of ours: a typed decode error (a dead letter)."""
    client, handler = scripted
    data = b"\x00\x00\x00\x00\x05" + b"\x02"
    for body in (b'{"schema": "\\"string\\""}', b'{"schema": "not json"}', b'{"schema": "{\\"type\\": 1}"}'):
        handler.answer = (200, "application/json", body)
        with pytest.raises(UnknownSchemaId):
            AvroCodec(registry=ConfluentRegistryClient(url=client._url)).decode(data)


def test_an_unreachable_registry_is_not_a_decode_error() -> None:
    """A registry outage must not turn good records into dead letters: it is raised as such."""
    codec = AvroCodec(registry=ConfluentRegistryClient(url="http://127.0.0.1:9", timeout=0.5))
    data = AvroCodec(framing="confluent", registry=_Fixed(5)).encode(sample_records()["TwinAlert"])
    with pytest.raises(RegistryError) as raised:
        codec.decode(data)
    assert not isinstance(raised.value, UnknownSchemaId)


class _Fixed:
    def __init__(self, schema_id: int) -> None:
        self.schema_id = schema_id

    def register(self, subject: str, schema: str) -> int:
        return self.schema_id

    def get_schema(self, schema_id: int) -> str:
        raise SchemaNotFound("unused")
