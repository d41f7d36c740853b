"""helm for the chart tests: built from source with the installed Go (no replace directives) into
``~/.cache/mint/helm-v3.22.0/helm`` once, then reused by every run and every clone.

    GOBIN=~/.cache/mint/helm-v3.22.0 go install -ldflags "-X …version=v3.22.0" \\
        helm.sh/helm/v3/cmd/helm@v3.22.0
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.k8s.build import K8S_VERSION

HELM_VERSION = "v3.22.0"
HELM_MODULE = "helm.sh/helm/v3"
CACHE = Path(os.environ.get("MINT_CACHE_DIR") or Path.home() / ".cache" / "mint")


class HelmBuildError(RuntimeError):
    pass


def helm_dir() -> Path:
    return CACHE / f"helm-{HELM_VERSION}"


def _built_version(exe: Path) -> str | None:
    """The helm module version recorded in the binary's build info (``go version -m``)."""
    try:
        out = subprocess.run(
            ["go", "version", "-m", str(exe)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "mod" and parts[1] == HELM_MODULE:
            return parts[2]
    return None


def ensure_helm(log: object = print) -> Path:
    """The cached helm binary, building it first when missing or of another version."""
    exe = helm_dir() / "helm"
    if exe.exists() and _built_version(exe) == HELM_VERSION:
        return exe
    if shutil.which("go") is None:
        raise HelmBuildError(
            "Go is not installed: cannot build helm (go install) for the chart tests"
        )
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".helm-{HELM_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building it right now
        if exe.exists() and _built_version(exe) == HELM_VERSION:
            return exe
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix=f".helm-{HELM_VERSION}-", dir=CACHE))
        env = {**os.environ, "GOBIN": str(staging)}
        ldflags = f"-X {HELM_MODULE}/internal/version.version={HELM_VERSION}"
        cmd = ["go", "install", "-ldflags", ldflags, f"{HELM_MODULE}/cmd/helm@{HELM_VERSION}"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0 or not (staging / "helm").exists():
            shutil.rmtree(staging, ignore_errors=True)
            raise HelmBuildError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        target = helm_dir()
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        if callable(log):
            log(f"[helm] built {HELM_VERSION} in {time.monotonic() - started:.0f}s → {target}")
    return exe


#: What `template` and `lint` assume of the cluster: the test control plane's version (a helm
#: built from source defaults to v1.20, below the charts' kubeVersion).
KUBE_VERSION = K8S_VERSION


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    exe = ensure_helm()
    if args and args[0] in ("template", "lint") and "--kube-version" not in args:
        args = (*args, "--kube-version", KUBE_VERSION)
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc
