"""MintLimits → the limits ConfigMap in the file format of platform.md (snake_case, ``version`` =
the object's generation); the defaults when no MintLimits exists yet; MintLimits status."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import yaml

from mint_operator import catalog
from mint_operator.render.common import meta, obj
from mint_operator.spec import Obj, Tenant

DEFAULT_VERSION = "0"
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(name: str) -> str:
    return _CAMEL.sub(r"_\1", name).lower()


def _merge(base: Obj, over: Mapping[str, Any]) -> Obj:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _snake_keys(value: Any, *, keep: bool = False) -> Any:
    if isinstance(value, Mapping):
        return {
            (k if keep else snake(k)): _snake_keys(v, keep=(k == "tiers")) for k, v in value.items()
        }
    return value


def limits_document(limits: Mapping[str, Any] | None) -> Obj:
    """The limits file as a dict: from a MintLimits object, or the defaults when ``None``."""
    spec: Mapping[str, Any] = (limits or {}).get("spec") or {}
    merged = _merge(dict(catalog.DEFAULT_LIMITS_SPEC), spec)
    version = str((limits or {}).get("metadata", {}).get("generation", DEFAULT_VERSION))
    doc: Obj = {"version": version, "currency": merged["currency"]}
    doc["tiers"] = {tier: _snake_keys(merged["tiers"][tier]) for tier in catalog.TIERS}
    doc["fraud"] = _snake_keys(merged["fraud"])
    return doc


def limits_yaml(doc: Mapping[str, Any]) -> str:
    header = "# Written by mint-operator from MintLimits; edit the MintLimits, not this file.\n"
    return header + yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False)


LIMITS_VERSION = "mint.dev/limits-version"


def kept_limits_document(configmap: Mapping[str, Any] | None) -> Obj | None:
    """The limits a ConfigMap holds when they came from a MintLimits (not the defaults): what
    stays applied after that MintLimits is deleted. None for defaults or an unreadable file."""
    if configmap is None:
        return None
    annotations = (configmap.get("metadata") or {}).get("annotations") or {}
    if annotations.get(LIMITS_VERSION, DEFAULT_VERSION) == DEFAULT_VERSION:
        return None
    try:
        doc = yaml.safe_load(((configmap.get("data") or {}).get(catalog.LIMITS_FILE_NAME)) or "")
    except yaml.YAMLError:
        return None
    if not isinstance(doc, dict) or not {"version", "currency", "tiers", "fraud"} <= set(doc):
        return None
    return doc


def render_limits_configmap(
    t: Tenant, limits: Mapping[str, Any] | None, kept: Mapping[str, Any] | None = None
) -> Obj:
    """From the MintLimits; without one, the ``kept`` document (the last applied limits of a
    deleted MintLimits) or the defaults."""
    doc = dict(kept) if limits is None and kept is not None else limits_document(limits)
    m = meta(t, t.limits_configmap, "limits", annotations={LIMITS_VERSION: str(doc["version"])})
    return obj("v1", "ConfigMap", m, data={catalog.LIMITS_FILE_NAME: limits_yaml(doc)})


def limits_status(
    limits: Mapping[str, Any], reported: Mapping[str, str | None], configmaps: list[str]
) -> Obj:
    """MintLimits status from what each limits-using service reports in ``/readyz``
    (``reported``: service → limits_version, ``None`` when it could not be read)."""
    generation = int(limits.get("metadata", {}).get("generation", 0))
    version = str(generation)
    applied = sorted(s for s, v in reported.items() if v == version)
    pending = sorted(s for s in reported if s not in applied)
    done = bool(reported) and not pending
    condition: Obj = {
        "type": "Applied",
        "status": "True" if done else "False",
        "reason": "AllServicesReport" if done else ("NoTenant" if not configmaps else "Pending"),
        "message": "every service reports the written version"
        if done
        else (f"waiting for: {', '.join(pending)}" if pending else "no tenant uses these limits"),
        "observedGeneration": generation,
    }
    return {
        "observedGeneration": generation,
        "version": version,
        "applied": f"{len(applied)}/{len(reported)}",
        "services": {s: (v if v is not None else "") for s, v in sorted(reported.items())},
        "configMaps": sorted(configmaps),
        "conditions": [condition],
    }
