"""Embedded real infrastructure (PostgreSQL, Redis, Kafka, S3, SMTP) for `make dev` and tests.

infra = EmbeddedInfra(data_dir, databases=["ledger", "users"])
endpoints = infra.start()
...
infra.stop()
"""

from mint.infra.core import ALL_COMPONENTS, EmbeddedInfra
from mint.infra.endpoints import InfraEndpoints
from mint.infra.process import InfraError

__all__ = ["ALL_COMPONENTS", "EmbeddedInfra", "InfraEndpoints", "InfraError"]
