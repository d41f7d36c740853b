"""The environment of each service container (the kit's ``MINT_*`` settings)."""

from __future__ import annotations

from mint_operator import catalog
from mint_operator.render.postgres import owner_role, role_secret
from mint_operator.spec import Obj, Tenant, dig


def _value(name: str, value: object) -> Obj:
    return {"name": name, "value": str(value)}


def _secret(name: str, secret: str, key: str, *, optional: bool = False) -> Obj:
    ref: Obj = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def database_env(t: Tenant, service: str) -> list[Obj]:
    """MINT_DATABASE_URL (and, for audit, the owner role's MINT_MIGRATIONS_DATABASE_URL)."""
    if service not in catalog.DATABASE_SERVICES:
        return []
    separate = service in catalog.SEPARATE_OWNER_SERVICES
    if t.postgres_mode == "external":
        secret = str(dig(t.spec, "postgres.external.secretName"))
        env = [_secret("MINT_DATABASE_URL", secret, service)]
        if separate:
            env.append(_secret("MINT_MIGRATIONS_DATABASE_URL", secret, f"{service}-owner"))
        return env
    # audit: the owner role runs migrations; the runtime role (INSERT/SELECT only, granted by
    # migrations) serves
    env = [_secret("MINT_DATABASE_URL", role_secret(t, service, service), "uri")]
    if separate:
        owner = role_secret(t, service, owner_role(service))
        env.append(_secret("MINT_MIGRATIONS_DATABASE_URL", owner, "uri"))
    return env


def _kafka_env(t: Tenant) -> Obj:
    secret = dig(t.spec, "kafka.external.secretName")
    if t.kafka_mode == "external" and secret:
        return _secret("MINT_KAFKA_BOOTSTRAP_SERVERS", str(secret), "bootstrapServers")
    return _value("MINT_KAFKA_BOOTSTRAP_SERVERS", t.kafka_bootstrap)


def _redis_env(t: Tenant) -> Obj:
    if t.redis_mode == "external":
        secret = dig(t.spec, "redis.external.secretName")
        if secret:
            key = str(dig(t.spec, "redis.external.key", "url"))
            return _secret("MINT_REDIS_URL", str(secret), key)
        return _value("MINT_REDIS_URL", dig(t.spec, "redis.external.url", ""))
    return _value("MINT_REDIS_URL", f"redis://{t.child('redis')}:6379/0")


def service_env(t: Tenant, service: str) -> list[Obj]:
    """Every variable of one service; the tenant's ``services.<name>.env`` wins on a clash."""
    cfg = t.services[service]
    env: list[Obj] = [
        _value("MINT_SERVICE_NAME", service),
        _value("MINT_ENVIRONMENT", dig(t.spec, "environment", "production")),
        _value("MINT_HTTP_PORT", cfg.http_port),
        _value("MINT_GRPC_PORT", cfg.grpc_port or 0),
        _value("MINT_PUBLIC_URL", t.public_url),
        _value("MINT_AUTH_URL", f"http://{t.child('auth')}:{catalog.HTTP_PORTS['auth']}"),
        _value("MINT_TRUSTED_PROXIES", dig(t.spec, "trustedProxies", "")),
        _kafka_env(t),
        _value("MINT_KAFKA_PREFIX", t.kafka_prefix),
        _redis_env(t),
        _secret("MINT_INTERNAL_TOKEN", t.internal_token_secret, "token"),
    ]
    env += [
        _value(f"MINT_{callee.upper()}_GRPC", f"{t.child(callee)}:{port}")
        for callee, port in catalog.GRPC_PORTS.items()
    ]
    env += database_env(t, service)
    if service in catalog.SIGNING_KEY_SERVICES:
        env.append(_value("MINT_SIGNING_KEYS_DIR", catalog.SIGNING_KEYS_DIR))
    if service in catalog.LIMITS_SERVICES:
        path = f"{catalog.LIMITS_MOUNT_DIR}/{catalog.LIMITS_FILE_NAME}"
        env.append(_value("MINT_LIMITS_FILE", path))
    if service == "admin":
        env.append(_value("MINT_LIMITS_OBJECT", f"{t.namespace}/{t.limits_name}"))
    smtp = dig(t.spec, "smtp.secretName")
    if smtp and service in catalog.SMTP_SERVICES:
        env.append(_secret("MINT_SMTP_URL", str(smtp), str(dig(t.spec, "smtp.key", "url"))))
    storage = dig(t.spec, "objectStorage") or {}
    if storage.get("endpoint") and service in catalog.OBJECT_STORAGE_SERVICES:
        env.append(_value("MINT_S3_ENDPOINT", storage["endpoint"]))
        if storage.get("region"):
            env.append(_value("MINT_S3_REGION", storage["region"]))
        if storage.get("bucket"):
            env.append(_value("MINT_KYC_BUCKET", storage["bucket"]))  # KYC documents
        if storage.get("credentialsSecret"):
            creds = str(storage["credentialsSecret"])
            env.append(_secret("MINT_S3_ACCESS_KEY", creds, "accessKey"))
            env.append(_secret("MINT_S3_SECRET_KEY", creds, "secretKey"))
    otlp = dig(t.spec, "observability.otlpEndpoint")
    if otlp:
        env.append(_value("OTEL_EXPORTER_OTLP_ENDPOINT", otlp))
    env.append(_value("MINT_TRACE_SAMPLE_RATIO", dig(t.spec, "observability.sampleRatio", 1.0)))
    overrides = {e["name"]: e for e in cfg.env}
    merged = [overrides.pop(e["name"], e) for e in env]
    return merged + list(overrides.values())


def referenced_secrets(env: list[Obj]) -> list[str]:
    """Names of the Secrets an env list reads (their data feeds the config hash)."""
    names = {
        str(e["valueFrom"]["secretKeyRef"]["name"])
        for e in env
        if isinstance(e.get("valueFrom"), dict) and "secretKeyRef" in e["valueFrom"]
    }
    return sorted(names)
