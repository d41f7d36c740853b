"""Documents across the database and object storage.

Replacing a document is atomic for readers: the new object is written first, then the database
row is switched in one transaction (under the profile's lock, re-checking that no review is in
progress), and only after the commit is the old object deleted. If anything fails before the
commit, the new object is removed and the old document stays current.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, cast

import structlog
from sqlalchemy.orm import Session

from mint.kit.db import utcnow
from mint.kit.errors import Problem
from mint.kit.service import ServiceContext
from mint.kyc import domain, store
from mint.kyc.models import Document, Profile
from mint.kyc.settings import Settings
from mint.kyc.storage import DocumentStorage, storage_for, storage_key
from mint.kyc.uploads import Upload

log = structlog.get_logger("mint.kyc.documents")


def settings_of(ctx: ServiceContext) -> Settings:
    return ctx.settings_as(Settings)


def storage_of(ctx: ServiceContext) -> DocumentStorage:
    return storage_for(settings_of(ctx))


def save_document(
    ctx: ServiceContext,
    user_id: uuid.UUID,
    doc_type: str,
    upload: Upload,
    finish: Callable[[Session, Document], None] | None = None,
) -> Document:
    """Store ``upload`` as the user's current document of ``doc_type``; ``finish`` runs in the
    transaction that switches the row (e.g. to record the idempotent outcome)."""
    db, storage = ctx.database(), storage_of(ctx)
    with db.session() as session:  # fail fast, before moving any bytes
        profile, _ = store.ensure_profile(session, user_id, actor=user_id)
        store.refuse_while_in_review(profile)
        profile_id = profile.id
    document_id = uuid.uuid4()
    key = storage_key(profile_id, document_id)
    storage.put(key, cast(BinaryIO, upload.file), upload.size, upload.content_type)
    try:
        with db.session() as session:
            document = Document(
                id=document_id,
                profile_id=profile_id,
                type=doc_type,
                file_name=domain.clean_file_name(upload.file_name, upload.content_type),
                content_type=upload.content_type,
                size=upload.size,
                sha256=upload.sha256,
                storage_key=key,
                status=domain.DOC_UPLOADED,
                uploaded_at=utcnow(),
            )
            old_key = store.replace_document(session, user_id, document)
            if finish is not None:
                finish(session, document)
    except BaseException:
        storage.delete(key)
        raise
    if old_key is not None:
        storage.delete(old_key)
    log.info(
        "kyc_document_stored",
        user_id=str(user_id),
        document_id=str(document_id),
        type=doc_type,
        size=upload.size,
        replaced=old_key is not None,
    )
    return document


@dataclass(frozen=True)
class DocumentContent:
    document_id: uuid.UUID
    user_id: uuid.UUID
    type: str
    file_name: str
    content_type: str
    size: int
    chunks: Iterator[bytes]


def open_document(ctx: ServiceContext, document_id: uuid.UUID) -> DocumentContent:
    with ctx.database().session() as session:
        document = store.get_document(session, document_id)
        if document is None:
            raise Problem(404, "document_not_found", "no such document")
        profile = session.get(Profile, document.profile_id)
        assert profile is not None
        meta = (document.type, document.file_name, document.content_type, document.size)
        key, user_id = document.storage_key, profile.user_id
    chunks = storage_of(ctx).read(key)
    return DocumentContent(document_id, user_id, *meta, chunks=chunks)
