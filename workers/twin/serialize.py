"""Serialized form of :class:`~workers.twin.state.TwinState`.

Layout: ``MAGIC`` (5 bytes) + SHA-256 of the body (32 bytes) + body, where body is
zlib (level 9) of a protocol-5 pickle written in *fast mode* (no memo). Without the memo a
pickle depends only on values, not on which equal strings happen to be the same object, so
a state rebuilt from bytes re-serializes to the same bytes and replay equals live. The state
therefore must be acyclic (no bound-method attributes such as river's ``PageHinkley`` keeps)
and free of sets (their order depends on hash randomisation).

Loading uses an allow-list unpickler: only the twin's own classes, river estimators, a few
builtins and numpy's array rebuilders can be constructed. The SHA-256 detects corruption;
pass ``key`` to use HMAC-SHA256 instead when the store is not trusted.

States stored by an earlier layout of the twin (before issue #16) load too: their removed
classes are read as attribute bags and :func:`workers.twin.upgrade.upgrade` brings the state
to the current layout, new model parts starting fresh. The blob layout is unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import pickle
import zlib

from workers.twin.exceptions import StateDecodeError
from workers.twin.twin import TwinState
from workers.twin.upgrade import LEGACY_CLASSES, upgrade

MAGIC = b"NMTW1"
BUDGET_BYTES = 32 * 1024
_ALLOWED_PREFIXES = ("workers.twin.", "river.")
_ALLOWED = {
    ("builtins", "float"),
    ("builtins", "int"),
    ("builtins", "dict"),
    ("builtins", "list"),
    ("collections", "OrderedDict"),
    ("collections", "Counter"),
    ("collections", "defaultdict"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
    # numpy arrays inside river's BayesianLinearRegression
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy.core.multiarray", "_reconstruct"),
}


class _AllowListUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) in LEGACY_CLASSES:
            return LEGACY_CLASSES[(module, name)]
        if (module, name) in _ALLOWED or module.startswith(_ALLOWED_PREFIXES):
            return super().find_class(module, name)
        raise StateDecodeError(f"disallowed class in twin state: {module}.{name}")


def _pickle(state: TwinState) -> bytes:
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=5)
    pickler.fast = True  # no memo: bytes depend on values only
    pickler.dump(state)
    return buf.getvalue()


def _digest(body: bytes, key: bytes | None) -> bytes:
    if key is None:
        return hashlib.sha256(body).digest()
    return hmac.new(key, body, hashlib.sha256).digest()


def serialize(state: TwinState, *, key: bytes | None = None) -> bytes:
    """Return the canonical bytes of ``state``.

    Parameters
    ----------
    state
        The twin state.
    key
        Optional HMAC key; without it the checksum is a plain SHA-256.
    """
    body = zlib.compress(_pickle(state), 9)
    return MAGIC + _digest(body, key) + body


def deserialize(blob: bytes, *, key: bytes | None = None) -> TwinState:
    """Rebuild a state from :func:`serialize` output.

    Raises
    ------
    StateDecodeError
        Wrong magic, checksum mismatch, corrupt body, a disallowed class or a state of an
        earlier layout that cannot be upgraded.
    """
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 32:
        raise StateDecodeError("not a twin state blob")
    digest, body = blob[len(MAGIC) : len(MAGIC) + 32], blob[len(MAGIC) + 32 :]
    if not hmac.compare_digest(digest, _digest(body, key)):
        raise StateDecodeError("twin state checksum mismatch")
    try:
        raw = zlib.decompress(body)
        state = _AllowListUnpickler(io.BytesIO(raw)).load()
        if not isinstance(state, TwinState):
            raise StateDecodeError(f"unexpected payload type {type(state).__name__}")
        return upgrade(state)
    except StateDecodeError:
        raise
    except Exception as exc:
        raise StateDecodeError(str(exc)) from exc


def state_size(state: TwinState) -> dict[str, int]:
    """Sizes in bytes: ``pickle`` (uncompressed) and ``serialized`` (what is stored)."""
    return {"pickle": len(_pickle(state)), "serialized": len(serialize(state))}


def state_digest(state: TwinState) -> str:
    """Hex SHA-256 of the serialized state (cheap equality for replay checks)."""
    return hashlib.sha256(serialize(state)).hexdigest()
