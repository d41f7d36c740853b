"""Public HTTP API under ``/api/v1/kyc``: the caller's profile, documents, submission, limits."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from mint.kit import idempotency
from mint.kit.security import CurrentUser
from mint.kit.service import Ctx, DbSession, ServiceContext
from mint.kyc import domain, store
from mint.kyc.documents import save_document, settings_of
from mint.kyc.models import Document, Profile
from mint.kyc.uploads import Upload, invalid, read_upload

router = APIRouter(tags=["kyc"])


class DocumentOut(BaseModel):
    id: uuid.UUID
    type: str
    file_name: str
    content_type: str
    size: int
    status: str
    uploaded_at: datetime


class ProfileOut(BaseModel):
    tier: str
    status: str
    country: str | None
    full_name: str | None
    date_of_birth: date | None
    rejection_reason: str | None
    submitted_at: datetime | None
    documents: list[DocumentOut]


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    country: Annotated[str, Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")]
    full_name: Annotated[str, Field(min_length=1, max_length=200)]
    date_of_birth: date

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return domain.normalize_country(value)

    @field_validator("full_name")
    @classmethod
    def _name(cls, value: str) -> str:
        return domain.normalize_full_name(value)

    @field_validator("date_of_birth")
    @classmethod
    def _born(cls, value: date) -> date:
        return domain.check_date_of_birth(value, datetime.now(UTC).date())


class LimitsOut(BaseModel):
    tier: str
    currency: str
    per_transaction: int
    daily: int
    monthly: int


def document_out(document: Document) -> DocumentOut:
    return DocumentOut(
        id=document.id,
        type=document.type,
        file_name=document.file_name,
        content_type=document.content_type,
        size=document.size,
        status=document.status,
        uploaded_at=document.uploaded_at,
    )


def profile_out(session: Session, profile: Profile) -> ProfileOut:
    return ProfileOut(
        tier=profile.tier,
        status=profile.status,
        country=profile.country,
        full_name=profile.full_name,
        date_of_birth=profile.date_of_birth,
        rejection_reason=profile.rejection_reason,
        submitted_at=profile.submitted_at,
        documents=[document_out(d) for d in store.documents_of(session, profile.id)],
    )


@router.get("", response_model=ProfileOut)
def get_my_profile(user: CurrentUser, session: DbSession) -> ProfileOut:
    profile, _ = store.ensure_profile(session, user.user_id, actor=user.user_id)
    return profile_out(session, profile)


_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "review_in_progress | profile_locked"}
}


@router.put("/profile", response_model=ProfileOut, responses=_CONFLICT)
def put_profile(body: ProfileIn, user: CurrentUser, session: DbSession) -> ProfileOut:
    profile = store.update_details(
        session,
        user.user_id,
        country=body.country,
        full_name=body.full_name,
        born=body.date_of_birth,
    )
    return profile_out(session, profile)


@router.get("/limits", response_model=LimitsOut)
def get_my_limits(user: CurrentUser, ctx: Ctx, session: DbSession) -> LimitsOut:
    profile = store.get_profile(session, user.user_id)
    tier = profile.tier if profile is not None else domain.UNVERIFIED
    limits = ctx.limits.current
    values = limits.for_tier(tier)
    return LimitsOut(
        tier=tier,
        currency=limits.currency,
        per_transaction=values.per_transaction,
        daily=values.daily,
        monthly=values.monthly,
    )


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
async def upload_document(request: Request, user: CurrentUser, ctx: Ctx) -> Any:
    settings = settings_of(ctx)
    key_header = request.headers.get(idempotency.HEADER)
    key = idempotency.validate_key(key_header) if key_header is not None else None
    upload = await read_upload(
        request,
        max_file_bytes=settings.kyc_max_upload_bytes,
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
            document = await run_in_threadpool(save_document, ctx, user.user_id, doc_type, upload)
            return document_out(document)
        return await run_in_threadpool(
            _save_once, ctx, user.user_id, key, request.url.path, doc_type, upload
        )
    finally:
        upload.close()


def _save_once(
    ctx: ServiceContext, user_id: uuid.UUID, key: str, path: str, doc_type: str, upload: Upload
) -> Any:
    """The upload under an Idempotency-Key: a replay answers the stored 201 (no second
    document); a failed attempt releases the key (nothing durable happened)."""
    db = ctx.database()
    request_body = {
        "type": doc_type,
        "sha256": upload.sha256,
        "size": upload.size,
        "file_name": upload.file_name,
    }
    claim = idempotency.begin(db, user_id, key, idempotency.fingerprint("POST", path, request_body))
    if not isinstance(claim, idempotency.Claimed):
        return idempotency.respond(claim)

    def record(session: Session, document: Document) -> None:
        body = document_out(document).model_dump(mode="json")
        idempotency.complete(session, user_id, key, 201, body)

    try:
        return document_out(save_document(ctx, user_id, doc_type, upload, finish=record))
    except BaseException:
        idempotency.abandon(db, user_id, key)
        raise


_SUBMIT_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "already_pending | already_verified | tier_too_low | "
        "id_document_missing | selfie_missing (`missing` lists every unmet requirement)"
    }
}


@router.post("/submit", status_code=202, response_model=ProfileOut, responses=_SUBMIT_ERRORS)
def submit_for_review(user: CurrentUser, session: DbSession) -> ProfileOut:
    profile = store.submit(session, user.user_id)
    return profile_out(session, profile)
