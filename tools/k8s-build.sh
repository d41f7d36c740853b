#!/usr/bin/env bash
# Build (or reuse) the test control plane: kube-apiserver, kube-controller-manager and etcd from
# source into ~/.cache/mint/k8s-<version>/bin (see tests/k8s/build.py). The pytest fixture does
# the same on demand; run this ahead of time to keep the first test run short.
#   tools/k8s-build.sh [--force] [--regen]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
exec "$PY" -m tests.k8s.build "$@"
