#!/usr/bin/env bash
# Installs what a Mint platform needs into the current kube context (a kind cluster made with
# manifests/kind-config.yaml): ingress-nginx (kind provider), the Strimzi cluster operator
# (watching namespace `kafka`) and the CloudNativePG operator. Idempotent; versions overridable.
#   kind create cluster --config manifests/kind-config.yaml && manifests/dev-deps.sh
set -euo pipefail

INGRESS_NGINX_VERSION="${INGRESS_NGINX_VERSION:-controller-v1.13.3}"
STRIMZI_VERSION="${STRIMZI_VERSION:-1.2.0}"          # the CRDs in tests/k8s/upstream_crds
CNPG_VERSION="${CNPG_VERSION:-1.30.0}"
KAFKA_NAMESPACE="${KAFKA_NAMESPACE:-kafka}"
TIMEOUT="${TIMEOUT:-300s}"

context="$(kubectl config current-context)"
echo "[dev-deps] installing into context ${context}"
case "$context" in
  kind-*) ;;
  *) [ "${FORCE:-}" = 1 ] || { echo "not a kind context (set FORCE=1 to proceed)" >&2; exit 1; } ;;
esac

echo "[dev-deps] ingress-nginx ${INGRESS_NGINX_VERSION}"
kubectl apply -f "https://raw.githubusercontent.com/kubernetes/ingress-nginx/${INGRESS_NGINX_VERSION}/deploy/static/provider/kind/deploy.yaml"

echo "[dev-deps] Strimzi ${STRIMZI_VERSION} (watching ${KAFKA_NAMESPACE})"
kubectl create namespace "${KAFKA_NAMESPACE}" --dry-run=client -o yaml | kubectl apply -f -
curl -fsSL "https://github.com/strimzi/strimzi-kafka-operator/releases/download/${STRIMZI_VERSION}/strimzi-cluster-operator-${STRIMZI_VERSION}.yaml" \
  | sed "s/namespace: .*/namespace: ${KAFKA_NAMESPACE}/" \
  | kubectl apply --server-side -n "${KAFKA_NAMESPACE}" -f -

echo "[dev-deps] CloudNativePG ${CNPG_VERSION}"
kubectl apply --server-side -f "https://raw.githubusercontent.com/cloudnative-pg/cloudnative-pg/release-${CNPG_VERSION%.*}/releases/cnpg-${CNPG_VERSION}.yaml"

echo "[dev-deps] namespaces for the operator and the platform"
for ns in mint-system mint monitoring; do
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
done

echo "[dev-deps] waiting for the controllers"
kubectl -n ingress-nginx wait --for=condition=Available deployment/ingress-nginx-controller --timeout="$TIMEOUT"
kubectl -n "${KAFKA_NAMESPACE}" wait --for=condition=Available deployment/strimzi-cluster-operator --timeout="$TIMEOUT"
kubectl -n cnpg-system wait --for=condition=Available deployment/cnpg-controller-manager --timeout="$TIMEOUT"
echo "[dev-deps] ready: install the operator (helm install mint-operator charts/mint-operator -n mint-system) or run tilt up"
