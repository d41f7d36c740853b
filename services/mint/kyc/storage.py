"""Document bytes in S3-compatible storage (the ``minio`` client). Keys are chosen by the
service (``documents/<profile_id>/<document_id>``) and never shown to users. One
:class:`DocumentStorage` per running service, built by :func:`mint.kyc.wiring.wire`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import urlsplit

import certifi
import structlog
import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from mint.kit.domain import Unavailable
from mint.kyc.settings import Settings

log = structlog.get_logger("mint.kyc.storage")

CHUNK_SIZE = 64 * 1024


class StorageUnavailable(Unavailable):
    def __init__(self) -> None:
        super().__init__(detail="document storage is unavailable")


def storage_key(profile_id: object, document_id: object) -> str:
    return f"documents/{profile_id}/{document_id}"


class DocumentStorage:
    """One bucket; created on first use if missing. Errors become :class:`StorageUnavailable`."""

    def __init__(self, settings: Settings) -> None:
        parts = urlsplit(
            settings.s3_endpoint
            if "://" in settings.s3_endpoint
            else f"http://{settings.s3_endpoint}"
        )
        if not parts.netloc:
            raise ValueError(f"MINT_S3_ENDPOINT is not a URL: {settings.s3_endpoint!r}")
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=3.0, read=30.0),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(502, 503, 504)),
            maxsize=16,
            ca_certs=certifi.where(),
        )
        self.client = Minio(
            parts.netloc,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=parts.scheme == "https",
            region=settings.s3_region,
            http_client=http,
        )
        self.bucket = settings.kyc_bucket
        self._bucket_ready = False
        self._lock = threading.Lock()

    def ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        with self._lock:
            if self._bucket_ready:
                return
            try:
                if not self.client.bucket_exists(self.bucket):
                    try:
                        self.client.make_bucket(self.bucket)
                        log.info("kyc_bucket_created", bucket=self.bucket)
                    except S3Error as exc:
                        if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                            raise
            except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
                log.warning("kyc_storage_unavailable", error=str(exc))
                raise StorageUnavailable() from exc
            self._bucket_ready = True

    def ping(self) -> bool:
        """Reachable with the bucket in place (created here if start-up could not)."""
        try:
            self.ensure_bucket()
            return bool(self.client.bucket_exists(self.bucket))
        except (StorageUnavailable, MinioException, urllib3.exceptions.HTTPError, OSError):
            return False

    def put(self, key: str, data: BinaryIO, length: int, content_type: str) -> None:
        self.ensure_bucket()
        try:
            self.client.put_object(self.bucket, key, data, length, content_type=content_type)
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            log.warning("kyc_storage_put_failed", error=str(exc))
            raise StorageUnavailable() from exc

    def read(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The object's bytes in chunks (the connection is released at the end)."""
        self.ensure_bucket()
        try:
            response = self.client.get_object(self.bucket, key)
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            log.warning("kyc_storage_get_failed", error=str(exc))
            raise StorageUnavailable() from exc
        try:
            yield from response.stream(chunk_size)
        finally:
            response.close()
            response.release_conn()

    def delete(self, key: str) -> bool:
        """Best effort: an object left behind is logged (it is unreachable, never served)."""
        try:
            self.client.remove_object(self.bucket, key)
            return True
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            log.warning("kyc_storage_delete_failed", key=key, error=str(exc))
            return False
