"""kyc settings: the kit's plus document storage (S3-compatible) and the limits file."""

from __future__ import annotations

from pydantic import Field, SecretStr

from mint.kit.config import KitSettings

MAX_UPLOAD_BYTES = 10 * 1024 * 1024


class Settings(KitSettings):
    service_name: str = "kyc"
    s3_endpoint: str = "http://s3:8333"  # http(s)://host:port
    s3_access_key: str = ""
    s3_secret_key: SecretStr = SecretStr("")
    s3_region: str = "us-east-1"
    kyc_bucket: str = Field(default="mint-kyc-docs", min_length=3, max_length=63)
    kyc_max_upload_bytes: int = Field(default=MAX_UPLOAD_BYTES, ge=1, le=100 * 1024 * 1024)
