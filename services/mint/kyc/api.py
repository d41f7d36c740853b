"""Public HTTP API under ``/api/v1/kyc``: the caller's profile, documents, submission, limits."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from mint.kit import idempotency
from mint.kit.security import CurrentUser
from mint.kit.service import DbSession, wiring
from mint.kyc import actions, domain
from mint.kyc.api_upload import Upload, invalid, read_upload
from mint.kyc.models import Document
from mint.kyc.schemas import DocumentOut, LimitsOut, ProfileIn, ProfileOut
from mint.kyc.wiring import Wiring

router = APIRouter(tags=["kyc"])

Wired = Annotated[Wiring, Depends(wiring(Wiring))]


@router.get("", response_model=ProfileOut)
def get_my_profile(user: CurrentUser, session: DbSession) -> ProfileOut:
    profile, _ = actions.ensure_profile(session, user.user_id, actor=user.user_id)
    return ProfileOut.model_validate(profile)


_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "review_in_progress | profile_locked"}
}


@router.put("/profile", response_model=ProfileOut, responses=_CONFLICT)
def put_profile(body: ProfileIn, user: CurrentUser, session: DbSession) -> ProfileOut:
    profile = actions.update_details(
        session,
        user.user_id,
        country=body.country,
        full_name=body.full_name,
        born=body.date_of_birth,
    )
    return ProfileOut.model_validate(profile)


@router.get("/limits", response_model=LimitsOut)
def get_my_limits(user: CurrentUser, wired: Wired, session: DbSession) -> LimitsOut:
    return LimitsOut.model_validate(actions.user_limits(session, wired.limits, user.user_id))


_UPLOAD_BODY: dict[str, Any] = {
    "parameters": [
        {
            "name": idempotency.HEADER,
            "in": "header",
            "required": False,
            "description": "Optional: a retry with the same key and file answers the first 201.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "type"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "type": {"type": "string", "enum": list(domain.DOCUMENT_TYPES)},
                    },
                }
            }
        },
    },
}
_UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed_multipart | invalid_idempotency_key"},
    409: {"description": "review_in_progress"},
    413: {"description": "file_too_large (more than 10 MB)"},
    415: {"description": "unsupported_media_type (not JPEG, PNG or PDF by content)"},
}


@router.post(
    "/documents",
    status_code=201,
    response_model=DocumentOut,
    openapi_extra=_UPLOAD_BODY,
    responses=_UPLOAD_ERRORS,
)
async def upload_document(request: Request, user: CurrentUser, wired: Wired) -> Any:
    key_header = request.headers.get(idempotency.HEADER)
    key = idempotency.validate_key(key_header) if key_header is not None else None
    upload = await read_upload(
        request,
        max_file_bytes=wired.settings.kyc_max_upload_bytes,
        file_field="file",
        text_fields={"type"},
    )
    try:
        doc_type = upload.fields.get("type")
        if doc_type is None:
            raise invalid("type", "field required")
        if doc_type not in domain.DOCUMENT_TYPES:
            raise invalid("type", f"must be one of {', '.join(domain.DOCUMENT_TYPES)}")
        if key is None:
            document = await run_in_threadpool(
                actions.upload_document,
                wired.db,
                wired.storage,
                user.user_id,
                upload.document(doc_type),
            )
            return DocumentOut.model_validate(document)
        return await run_in_threadpool(
            _upload_once, wired, user.user_id, key, request.url.path, doc_type, upload
        )
    finally:
        upload.close()


def _upload_once(
    wired: Wiring, user_id: uuid.UUID, key: str, path: str, doc_type: str, upload: Upload
) -> Any:
    """The upload under an Idempotency-Key: a replay answers the stored 201 (no second
    document); a failed attempt releases the key (nothing durable happened)."""
    request_body = {
        "type": doc_type,
        "sha256": upload.sha256,
        "size": upload.size,
        "file_name": upload.file_name,
    }
    fingerprint = idempotency.fingerprint("POST", path, request_body)
    claim = idempotency.begin(wired.db, user_id, key, fingerprint)
    if not isinstance(claim, idempotency.Claimed):
        return idempotency.respond(claim)

    def record(session: Session, document: Document) -> None:
        body = DocumentOut.model_validate(document).model_dump(mode="json")
        idempotency.complete(session, user_id, key, 201, body)

    try:
        document = actions.upload_document(
            wired.db, wired.storage, user_id, upload.document(doc_type), finish=record
        )
    except BaseException:
        idempotency.abandon(wired.db, user_id, key)
        raise
    return DocumentOut.model_validate(document)


_SUBMIT_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "already_pending | already_verified | tier_too_low | "
        "id_document_missing | selfie_missing (`missing` lists every unmet requirement)"
    }
}


@router.post("/submit", status_code=202, response_model=ProfileOut, responses=_SUBMIT_ERRORS)
def submit_for_review(user: CurrentUser, session: DbSession) -> ProfileOut:
    return ProfileOut.model_validate(actions.submit(session, user.user_id))
