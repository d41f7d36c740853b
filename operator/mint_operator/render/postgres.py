"""CloudNativePG (``postgresql.cnpg.io/v1``): one ``Cluster`` per database-owning service, or, in
the ``Shared`` layout (the dev profile), one Cluster with a role and a ``Database`` per service.
Both hold data: under ``deletionPolicy: Retain`` they outlive the tenant."""

from __future__ import annotations

from mint_operator import catalog
from mint_operator.render.common import meta, obj
from mint_operator.spec import Obj, Tenant, dig

CNPG = "postgresql.cnpg.io/v1"


def owner_role(service: str) -> str:
    """The role that owns the database and runs migrations."""
    return f"{service}_owner" if service in catalog.SEPARATE_OWNER_SERVICES else service


def roles(service: str) -> list[str]:
    """The login roles of one service's database: its owner, and the runtime role if separate."""
    owner = owner_role(service)
    return [owner, service] if owner != service else [owner]


def role_secret(t: Tenant, service: str, role: str) -> str:
    """The Secret holding ``role``'s credentials (``uri``), created by the operator if absent —
    except a per-service Cluster's owner, whose ``<cluster>-app`` CloudNativePG writes."""
    if t.postgres_shared:
        return f"{t.db_cluster(service)}-{role.replace('_', '-')}"
    if role == owner_role(service):
        return f"{t.db_cluster(service)}-app"
    return f"{t.db_cluster(service)}-runtime"


def operator_made_roles(t: Tenant, service: str) -> list[str]:
    """Roles whose password Secret the operator generates (CloudNativePG makes the others)."""
    if t.postgres_shared:
        return roles(service)
    return [r for r in roles(service) if r != owner_role(service)]


def role_uri(t: Tenant, service: str, role: str, password: str) -> str:
    """A role's DSN for ``service``'s database (the password is generated URL-safe)."""
    host = f"{t.db_cluster(service)}-rw.{t.namespace}.svc"
    return f"postgresql://{role}:{password}@{host}:5432/{service}"


def _managed_role(t: Tenant, service: str, role: str) -> Obj:
    return {
        "name": role,
        "ensure": "present",
        "login": True,
        "inherit": True,
        "passwordSecret": {"name": role_secret(t, service, role)},
    }


def _cluster_spec(t: Tenant, database: str, owner: str) -> Obj:
    cfg = dig(t.spec, "postgres.cloudnativepg", {}) or {}
    storage: Obj = {"size": str(cfg.get("storageSize", "1Gi"))}
    if cfg.get("storageClass"):
        storage["storageClass"] = cfg["storageClass"]
    spec: Obj = {
        "instances": int(cfg.get("instances", 1)),
        "storage": storage,
        "enableSuperuserAccess": False,
        "bootstrap": {"initdb": {"database": database, "owner": owner}},
    }
    if cfg.get("imageName"):
        spec["imageName"] = cfg["imageName"]
    if cfg.get("resources"):
        spec["resources"] = cfg["resources"]
    return spec


def render_cluster(t: Tenant, service: str) -> Obj:
    cfg = dig(t.spec, "postgres.cloudnativepg", {}) or {}
    spec = _cluster_spec(t, service, owner_role(service))
    if service in catalog.SEPARATE_OWNER_SERVICES:
        # the runtime role: LOGIN only; migrations (run as the owner) grant it INSERT/SELECT
        spec["managed"] = {"roles": [_managed_role(t, service, service)]}
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
    m = meta(t, t.db_cluster(service), f"{service}-db", holds_data=True)
    return obj(CNPG, "Cluster", m, spec=spec)


def database_services(t: Tenant) -> list[str]:
    return [s for s in catalog.DATABASE_SERVICES if t.is_enabled(s)]


def render_shared(t: Tenant) -> list[Obj]:
    """One Cluster (bootstrap database ``mint``), a login role per service and a Database each."""
    name = t.child("db")
    spec = _cluster_spec(t, "mint", "mint")
    spec["managed"] = {
        "roles": [_managed_role(t, s, r) for s in database_services(t) for r in roles(s)]
    }
    out = [obj(CNPG, "Cluster", meta(t, name, "db", holds_data=True), spec=spec)]
    reclaim = "retain" if t.retains_data else "delete"
    for service in database_services(t):
        out.append(
            obj(
                CNPG,
                "Database",
                meta(t, f"{name}-{service}", f"{service}-db", holds_data=True),
                spec={
                    "cluster": {"name": name},
                    "name": service,
                    "owner": owner_role(service),
                    "databaseReclaimPolicy": reclaim,
                },
            )
        )
    return out


def render_clusters(t: Tenant) -> list[Obj]:
    if t.postgres_mode != "cloudnativepg":
        return []
    if t.postgres_shared:
        return render_shared(t)
    return [render_cluster(t, s) for s in database_services(t)]
