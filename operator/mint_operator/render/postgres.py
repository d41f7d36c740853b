"""CloudNativePG: one ``Cluster`` per database-owning service (``postgresql.cnpg.io/v1``)."""

from __future__ import annotations

from mint_operator import catalog
from mint_operator.render.common import meta, obj
from mint_operator.spec import Obj, Tenant, dig

CNPG = "postgresql.cnpg.io/v1"


def owner_role(service: str) -> str:
    """The role that owns the database and runs migrations."""
    return f"{service}_owner" if service in catalog.SEPARATE_OWNER_SERVICES else service


def runtime_secret(t: Tenant, service: str) -> str:
    return f"{t.db_cluster(service)}-runtime"


def runtime_uri(t: Tenant, service: str, password: str) -> str:
    """The runtime role's DSN (the password is generated URL-safe)."""
    host = f"{t.db_cluster(service)}-rw.{t.namespace}.svc"
    return f"postgresql://{service}:{password}@{host}:5432/{service}"


def render_cluster(t: Tenant, service: str) -> Obj:
    cfg = dig(t.spec, "postgres.cloudnativepg", {}) or {}
    storage: Obj = {"size": str(cfg.get("storageSize", "1Gi"))}
    if cfg.get("storageClass"):
        storage["storageClass"] = cfg["storageClass"]
    spec: Obj = {
        "instances": int(cfg.get("instances", 1)),
        "storage": storage,
        "enableSuperuserAccess": False,
        "bootstrap": {"initdb": {"database": service, "owner": owner_role(service)}},
    }
    if cfg.get("imageName"):
        spec["imageName"] = cfg["imageName"]
    if service in catalog.SEPARATE_OWNER_SERVICES:
        # the runtime role: LOGIN only; migrations (run as the owner) grant it INSERT/SELECT
        spec["managed"] = {
            "roles": [
                {
                    "name": service,
                    "ensure": "present",
                    "login": True,
                    "inherit": True,
                    "passwordSecret": {"name": runtime_secret(t, service)},
                }
            ]
        }
    backup = cfg.get("backup") or {}
    if backup.get("destinationPath"):
        creds = str(backup["credentialsSecret"])
        store: Obj = {
            "destinationPath": f"{str(backup['destinationPath']).rstrip('/')}/{t.name}/{service}",
            "s3Credentials": {
                "accessKeyId": {"name": creds, "key": "ACCESS_KEY_ID"},
                "secretAccessKey": {"name": creds, "key": "ACCESS_SECRET_KEY"},
            },
        }
        if backup.get("endpointURL"):
            store["endpointURL"] = backup["endpointURL"]
        spec["backup"] = {
            "barmanObjectStore": store,
            "retentionPolicy": str(backup.get("retentionPolicy", "30d")),
        }
    return obj(CNPG, "Cluster", meta(t, t.db_cluster(service), f"{service}-db"), spec=spec)


def render_clusters(t: Tenant) -> list[Obj]:
    if t.postgres_mode != "cloudnativepg":
        return []
    return [render_cluster(t, s) for s in catalog.DATABASE_SERVICES if t.is_enabled(s)]
