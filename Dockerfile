# One image for every Mint service and the operator (platform.md "Containers"):
#   docker run IMAGE serve wallet      # `mint serve <name>`, configured by MINT_* variables
#   docker run IMAGE operator          # `mint operator` (kopf)
# Build:  docker build -t mint .          Dev image for Tilt (writable /app): --build-arg DEV=1
# Plain Dockerfile syntax (no heredocs): BuildKit and Debian's buildah both read it; `make test`
# builds it with buildah from a debootstrapped Debian base (tests/image/build.py).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: dependencies, generated gRPC stubs, the `mint` command -------------------------
FROM ${PYTHON_IMAGE} AS build
# A CA bundle the build's pip must trust (a TLS-inspecting proxy): mounted read-only at build
# time only (buildah -v BUNDLE:/run/mint-build-ca.pem:ro --build-arg MINT_BUILD_CA=...); it
# never enters an image layer.
ARG MINT_BUILD_CA=""
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app

# Dependencies only, so this layer is rebuilt only when pyproject.toml changes. The embedded
# infrastructure of `make dev` and the tests (the `embedded` extra) stays out: in Kubernetes
# PostgreSQL, Kafka, Redis, S3 and SMTP are real servers.
COPY pyproject.toml ./
RUN python -c 'import tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; open("/tmp/requirements.txt", "w").write("\n".join(deps) + "\n")'
RUN if [ -n "$MINT_BUILD_CA" ]; then export PIP_CERT="$MINT_BUILD_CA" SSL_CERT_FILE="$MINT_BUILD_CA"; fi \
 && pip install -r /tmp/requirements.txt \
 && pip install "grpcio-tools>=1.64" "setuptools>=69"

COPY protos ./protos
COPY services ./services
COPY operator ./operator
# gRPC stubs are generated at build time (they are not in git); then `mint` is installed in
# place (compat editable: a .pth pointing at /app/services and /app/operator, which is what lets
# Tilt's live_update sync sources into a running container).
RUN PYTHONPATH=services python -m mint.protogen \
 && pip install --no-deps --no-build-isolation -e . --config-settings editable_mode=compat \
 && printf '/app/services\n/app/operator\n' \
      > "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/mint-src.pth" \
 && pip uninstall -y -q grpcio-tools setuptools \
 && rm -rf build *.egg-info services/*.egg-info \
 && find /app /opt/venv -name __pycache__ -prune -exec rm -rf {} + \
 && python -m compileall -q -j 0 /app/services /app/operator /opt/venv/lib \
 && mint --help > /dev/null

# ---- runtime: slim, non-root ------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG DEV=0
LABEL org.opencontainers.image.title="mint" \
      org.opencontainers.image.description="Mint digital-wallet platform: services and operator"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MINT_ENVIRONMENT=production \
    MINT_LIMITS_FILE=/etc/mint/limits/limits.yaml \
    MINT_SIGNING_KEYS_DIR=/etc/mint/keys
RUN groupadd --system --gid 10001 mint \
 && useradd --system --uid 10001 --gid mint --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin mint
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
# Sources are root-owned and read-only for the service user, except in the dev image (Tilt).
RUN if [ "$DEV" = "1" ]; then chown -R mint:mint /app; fi
WORKDIR /app
USER 10001:10001
EXPOSE 3000 4001 4002 4003 4004 4005 4006 4007 4008 4009 4010 4011 \
       50051 50052 50053 50054 50055 50056 50057 8080
ENTRYPOINT ["mint"]
# No default service: every container names one (`serve wallet`, `operator`, ...).
CMD ["--help"]
