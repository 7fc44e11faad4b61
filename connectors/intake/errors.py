"""Error bodies: ``{"errors": [{"path", "message", "type"}]}`` without echoing any input."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


def error_item(message: str, *, type_: str, path: str = "") -> dict[str, str]:
    return {"path": path, "message": message, "type": type_}


def error_body(message: str, *, type_: str, path: str = "") -> dict[str, Any]:
    return {"errors": [error_item(message, type_=type_, path=path)]}


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    """One item per pydantic error, ``loc`` joined with dots (``item_responses.3``).

    Only the message and type are kept: ``input`` may hold free text (notes) and is dropped.
    """
    return [
        error_item(err["msg"], type_=err["type"], path=".".join(str(p) for p in err["loc"]))
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
