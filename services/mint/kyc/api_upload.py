"""HTTP layer only (imported by :mod:`mint.kyc.api`): the streaming ``multipart/form-data``
upload of ``POST /documents``, with its bounds enforced as the bytes arrive. Its answers are
HTTP statuses no domain error kind has (400, 413, 415), so it raises :class:`Problem` itself.

``Content-Length`` is never trusted: the file part is counted while it streams (413
``file_too_large`` past the limit), its type is decided by its first bytes (415
``unsupported_media_type`` unless JPEG, PNG or PDF), and the form may carry only the expected
fields. The file is spooled (memory, then disk) and hashed on the way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from tempfile import SpooledTemporaryFile
from typing import Any, BinaryIO, cast

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from mint.kit.bodies import MULTIPART_OVERHEAD_BYTES
from mint.kit.errors import Problem
from mint.kyc.actions import NewDocument
from mint.kyc.domain import MAGIC_BYTES_NEEDED, sniff_content_type

SPOOL_MEMORY_BYTES = 1024 * 1024
# Boundaries, part headers and small fields: the kit's allowance, so that the kit's own bound
# on a multipart body (MINT_MAX_UPLOAD_BYTES + this) lets every upload kyc accepts through.
FORM_OVERHEAD_BYTES = MULTIPART_OVERHEAD_BYTES
MAX_FIELD_BYTES = 1024


def too_large(limit: int) -> Problem:
    return Problem(
        413, "file_too_large", f"the file must be at most {limit} bytes", max_bytes=limit
    )


def unsupported_type() -> Problem:
    return Problem(415, "unsupported_media_type", "the file must be a JPEG, PNG or PDF")


def invalid(loc: str, msg: str) -> Problem:
    return Problem(
        422,
        "validation_error",
        "request validation failed",
        errors=[{"loc": ["body", loc], "msg": msg}],
    )


@dataclass
class Upload:
    """The received file (rewound; close it) and the form's text fields."""

    file: SpooledTemporaryFile[bytes]
    size: int
    sha256: str
    content_type: str
    file_name: str | None
    fields: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        self.file.close()

    def document(self, doc_type: str) -> NewDocument:
        return NewDocument(
            type=doc_type,
            content=cast(BinaryIO, self.file),
            size=self.size,
            sha256=self.sha256,
            content_type=self.content_type,
            file_name=self.file_name,
        )


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    is_file: bool = False
    data: bytearray = field(default_factory=bytearray)


class _FormReader:
    """Callbacks for python-multipart's push parser; raises :class:`Problem` on a violation."""

    def __init__(
        self, boundary: bytes, max_file_bytes: int, file_field: str, text_fields: set[str]
    ):
        self.max_file_bytes = max_file_bytes
        self.file_field = file_field
        self.text_fields = text_fields
        # closed by Upload.close(), or by read_upload on an error
        self.file: SpooledTemporaryFile[bytes] = SpooledTemporaryFile(  # noqa: SIM115
            max_size=SPOOL_MEMORY_BYTES
        )
        self.file_name: str | None = None
        self.file_done = False
        self.size = 0
        self.hasher = hashlib.sha256()
        self.head = b""
        self.content_type: str | None = None
        self.fields: dict[str, str] = {}
        self._part = _Part()
        self._header_name = b""
        self._header_value = b""
        callbacks: Any = {
            "on_part_begin": self._begin,
            "on_part_data": self._data,
            "on_part_end": self._end,
            "on_header_field": self._hfield,
            "on_header_value": self._hvalue,
            "on_header_end": self._hend,
            "on_headers_finished": self._headers_done,
        }
        self.parser = MultipartParser(boundary, callbacks)

    def _begin(self) -> None:
        self._part = _Part()

    def _hfield(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _hvalue(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _hend(self) -> None:
        self._part.headers[self._header_name.lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._part.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self._part.name = name
        if name == self.file_field:
            if self.file_done or self.size:
                raise invalid(name, "only one file may be sent")
            if b"filename" not in options:
                raise invalid(name, "must be a file")
            self._part.is_file = True
            self.file_name = options[b"filename"].decode("utf-8", "replace")
        elif name not in self.text_fields:
            raise invalid(name or "?", "unexpected field")
        elif name in self.fields:
            raise invalid(name, "given more than once")

    def _data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        part = self._part
        if not part.is_file:
            part.data.extend(chunk)
            if len(part.data) > MAX_FIELD_BYTES:
                raise invalid(part.name, "too long")
            return
        self.size += len(chunk)
        if self.size > self.max_file_bytes:
            raise too_large(self.max_file_bytes)
        if self.content_type is None:
            self.head += chunk[:MAGIC_BYTES_NEEDED]
            if len(self.head) >= MAGIC_BYTES_NEEDED:
                self._sniff()
        self.hasher.update(chunk)
        self.file.write(chunk)

    def _sniff(self) -> None:
        self.content_type = sniff_content_type(self.head[:MAGIC_BYTES_NEEDED])
        if self.content_type is None:
            raise unsupported_type()

    def _end(self) -> None:
        part = self._part
        if part.is_file:
            if self.content_type is None:
                self._sniff()  # shorter than the magic bytes
            self.file_done = True
        else:
            try:
                self.fields[part.name] = part.data.decode("utf-8")
            except UnicodeDecodeError:
                raise invalid(part.name, "must be UTF-8 text") from None

    def result(self) -> Upload:
        if not self.file_done:
            raise invalid(self.file_field, "field required")
        assert self.content_type is not None
        self.file.seek(0)
        return Upload(
            file=self.file,
            size=self.size,
            sha256=self.hasher.hexdigest(),
            content_type=self.content_type,
            file_name=self.file_name,
            fields=self.fields,
        )


async def read_upload(
    request: Request, *, max_file_bytes: int, file_field: str, text_fields: set[str]
) -> Upload:
    """Read a multipart form with one file and a few short text fields from the request."""
    media_type, params = parse_options_header(request.headers.get("content-type", ""))
    if media_type != b"multipart/form-data":
        raise Problem(415, "unsupported_media_type", "send multipart/form-data")
    boundary = params.get(b"boundary")
    if not boundary:
        raise Problem(400, "malformed_multipart", "multipart boundary missing")
    max_body = max_file_bytes + FORM_OVERHEAD_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body:
        raise too_large(max_file_bytes)  # refusing early is safe; accepting early never is
    reader = _FormReader(boundary, max_file_bytes, file_field, text_fields)
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_body:
                raise too_large(max_file_bytes)
            reader.parser.write(chunk)
        reader.parser.finalize()
        return reader.result()
    except FormParserError:
        reader.file.close()
        raise Problem(400, "malformed_multipart", "the multipart body is malformed") from None
    except BaseException:
        reader.file.close()
        raise
