"""The OpenAPI document says what the kit really answers (conventions.md "HTTP APIs").

FastAPI documents its own error shapes: a 422 ``HTTPValidationError`` as ``application/json``,
and nothing for the 400 the kit answers to malformed JSON or the 401 of a missing token. The kit
answers every error as ``application/problem+json`` (:mod:`mint.kit.errors`), so the document is
rewritten once, when first served:

- every 4xx/5xx response a route documents carries the ``Problem`` schema as problem+json;
- an operation with a JSON body documents 400 ``malformed_json``; one with parameters or a
  body documents 422 ``validation_error``;
- an operation with a security requirement (``mint.kit.security.CurrentUser``) documents 401;
- an operation with a body documents 413 ``payload_too_large``, one with a JSON body 415
  ``unsupported_media_type`` (both answered by :mod:`mint.kit.bodies`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from mint.kit.errors import PROBLEM_CONTENT_TYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; some codes add fields of their own.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "stable snake_case error code"},
        "max_bytes": {
            "type": "integer",
            "description": "the size bound (codes payload_too_large, file_too_large)",
        },
        "errors": {
            "type": "array",
            "description": "validation failures (code validation_error)",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                },
            },
        },
    },
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def install_problem_docs(app: FastAPI) -> None:
    """Serve ``app``'s OpenAPI document with the kit's error answers documented."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = document_problems(doc)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_problems(doc: dict[str, Any]) -> dict[str, Any]:
    """Rewrite ``doc`` (in place, and return it) as described in the module docstring."""
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for path_item in doc.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in _METHODS:
                _document_operation(operation)
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    return doc


def _document_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    body = operation.get("requestBody", {}).get("content", {})
    if "application/json" in body:
        _add(responses, "400", "malformed_json: the body is not valid JSON")
    if body or operation.get("parameters"):
        _add(responses, "422", "validation_error: `errors` lists each failure")
    if operation.get("security"):
        _add(responses, "401", "unauthorized: missing, invalid or expired access token")
    if body:
        _add(responses, "413", "payload_too_large: the body is over its size bound")
    if "application/json" in body:
        _add(responses, "415", "unsupported_media_type: a body that is not application/json")
    for status, response in responses.items():
        if status[:1] in ("4", "5"):
            if response.get("description") == "Validation Error":  # FastAPI's own wording
                response["description"] = "validation_error: `errors` lists each failure"
            response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": dict(_PROBLEM_REF)}}


def _add(responses: dict[str, Any], status: str, description: str) -> None:
    if status not in responses:
        responses[status] = {"description": description}
