"""Signing-key rotation (a timer): add a ``<kid>.pem`` when the newest key is older than the
rotation period, delete keys older than rotation + access-token lifetime + leeway. auth re-reads
its key directory; the Secret volume update reaches the pod without a restart. Only a Secret the
operator created is rotated (one made by External Secrets or by hand is left alone), and
``auth.signingKeys.rotation: false`` turns rotation off."""

from __future__ import annotations

import logging

from mint_operator.kube import Kube
from mint_operator.reconcile import OperatorConfig
from mint_operator.render.common import owner_of
from mint_operator.render.secrets import (
    RotationPlan,
    RotationPolicy,
    b64,
    new_private_key_pem,
    plan_rotation,
)
from mint_operator.spec import Obj, Tenant

log = logging.getLogger("mint_operator.rotation")


def rotate_signing_keys(kube: Kube, cfg: OperatorConfig, body: Obj) -> RotationPlan | None:
    t = Tenant.from_object(body, cfg.operator_namespace)
    if not t.is_enabled("auth") or not t.signing_key_rotation:
        return None
    secret = kube.get("v1", "Secret", t.namespace, t.signing_keys_secret)
    if secret is None:
        return None  # the reconcile creates it
    if owner_of(secret) != (t.namespace, t.name):
        log.debug("signing keys of %s are managed elsewhere: not rotated", t.key)
        return None
    plan = plan_rotation(sorted((secret.get("data") or {}).keys()), cfg.now(), RotationPolicy.of(t))
    if not plan.changes:
        return plan
    data: dict[str, str | None] = {f"{kid}.pem": None for kid in plan.remove}
    if plan.add:
        data[f"{plan.add}.pem"] = b64(new_private_key_pem())
    # resourceVersion makes the merge patch conditional: a concurrent writer wins, we retry later
    patch = {"metadata": {"resourceVersion": secret["metadata"]["resourceVersion"]}, "data": data}
    kube.patch("v1", "Secret", t.namespace, t.signing_keys_secret, patch)
    log.info("rotated signing keys of %s: added %s, removed %s", t.key, plan.add, list(plan.remove))
    return plan
