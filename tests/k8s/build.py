"""Build the test control plane — kube-apiserver, kube-controller-manager and etcd — from source.

The Go module in ``tests/k8s/harness`` requires ``k8s.io/kubernetes`` (with a ``replace`` for
every staging module, generated from that version's own go.mod) and ``go.etcd.io/etcd/server/v3``
(the version Kubernetes pins). Its three commands are built with the installed Go into
``~/.cache/mint/k8s-<version>/bin``, version-stamped through ``-ldflags``. A build is skipped when
the binaries exist and the stamp file matches the cache key (version + hash of go.mod, go.sum,
the harness sources and this script); Go's own build cache (``go env GOCACHE``) is left in place,
so a rebuild after a key change is incremental.

    python -m tests.k8s.build              # build if needed, print the bin dir
    python -m tests.k8s.build --force      # rebuild
    python -m tests.k8s.build --regen      # regenerate go.mod/go.sum for K8S_VERSION (network)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

K8S_VERSION = "v1.36.3"
# The etcd server version k8s.io/kubernetes v1.36.3 pins in its go.mod (served by the proxy).
ETCD_VERSION = "v3.6.8"
# A Go toolchain for versions that need a newer Go than the installed one (e.g. v1.37.x needs
# GOTOOLCHAIN=go1.27.3); empty = the installed Go.
GOTOOLCHAIN = os.environ.get("MINT_K8S_GOTOOLCHAIN", "")

HARNESS = Path(__file__).resolve().parent / "harness"
MODULE = "mint.dev/tests/k8s/harness"

# binary name -> Go package (built from inside our module, so our replaces apply)
COMMANDS = {
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "etcd": f"{MODULE}/cmd/etcd",
}
STAMP_NAME = "build-stamp.json"


class BuildError(RuntimeError):
    """The control plane could not be built."""


@dataclass(frozen=True)
class BuildResult:
    bin_dir: Path
    version: str
    built: bool  # False when the cached binaries were reused
    seconds: float


def cache_root() -> Path:
    base = os.environ.get("MINT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mint"
    )
    return Path(base)


def bin_dir(version: str = K8S_VERSION) -> Path:
    return cache_root() / f"k8s-{version}" / "bin"


def _minor(version: str) -> tuple[str, str]:
    m = re.fullmatch(r"v(\d+)\.(\d+)\.\d+.*", version)
    if not m:
        raise BuildError(f"not a Kubernetes version: {version}")
    return m.group(1), m.group(2)


def cache_key(version: str = K8S_VERSION) -> str:
    h = hashlib.sha256()
    h.update(version.encode())
    h.update(GOTOOLCHAIN.encode())
    files = [HARNESS / "go.mod", HARNESS / "go.sum", Path(__file__).resolve()]
    files += sorted(HARNESS.rglob("*.go"))
    for path in files:
        h.update(str(path.relative_to(HARNESS.parent)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:20]


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env["CGO_ENABLED"] = "0"
    env["GOFLAGS"] = "-p=2 -buildvcs=false -mod=readonly"
    env.setdefault("GOPROXY", "https://proxy.golang.org,direct")
    if GOTOOLCHAIN:
        env["GOTOOLCHAIN"] = GOTOOLCHAIN
    return env


def _go() -> str:
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if not go:
        raise BuildError(
            "the `go` command is not on PATH; install Go >= 1.26 to build the test control plane"
        )
    return go


def ldflags(version: str) -> str:
    major, minor = _minor(version)
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return " ".join(flags)


def read_stamp(directory: Path) -> dict[str, str]:
    try:
        data = json.loads((directory / STAMP_NAME).read_text())
        return {str(k): str(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def is_current(version: str = K8S_VERSION) -> bool:
    d = bin_dir(version)
    stamp = read_stamp(d)
    return (
        stamp.get("key") == cache_key(version)
        and stamp.get("version") == version
        and all((d / name).is_file() and os.access(d / name, os.X_OK) for name in COMMANDS)
    )


def ensure_built(
    version: str = K8S_VERSION, *, force: bool = False, log: Callable[[str], object] = print
) -> BuildResult:
    """Build the three binaries unless the cached ones carry the current stamp."""
    started = time.monotonic()
    out = bin_dir(version)
    if not force and is_current(version):
        return BuildResult(out, version, False, time.monotonic() - started)
    go = _go()
    env = _go_env()
    out.mkdir(parents=True, exist_ok=True)
    (out / STAMP_NAME).unlink(missing_ok=True)
    log_path = out.parent / "build.log"
    flags = ldflags(version)
    with log_path.open("w") as logf:
        for name, pkg in COMMANDS.items():
            t0 = time.monotonic()
            log(f"[k8s-build] go build {pkg} -> {out / name}")
            cmd = [
                go,
                "build",
                "-trimpath",
                "-ldflags",
                flags,
                "-o",
                str(out / (name + ".tmp")),
                pkg,
            ]
            logf.write(f"$ {' '.join(cmd)}\n")
            logf.flush()
            proc = subprocess.run(cmd, cwd=HARNESS, env=env, stdout=logf, stderr=subprocess.STDOUT)
            if proc.returncode != 0:
                logf.flush()
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
                raise BuildError(
                    f"go build {pkg} failed (exit {proc.returncode}); log {log_path}:\n{tail}"
                )
            os.replace(out / (name + ".tmp"), out / name)
            log(f"[k8s-build]   {name} built in {time.monotonic() - t0:.0f}s")
    stamp = {
        "version": version,
        "etcd": ETCD_VERSION,
        "key": cache_key(version),
        "go": _go_version(go, env),
    }
    (out / STAMP_NAME).write_text(json.dumps(stamp, indent=2) + "\n")
    return BuildResult(out, version, True, time.monotonic() - started)


def _go_version(go: str, env: dict[str, str]) -> str:
    try:
        return subprocess.run(
            [go, "env", "GOVERSION"], cwd=HARNESS, env=env, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "?"


# ---- go.mod generation ------------------------------------------------------------------------


def staging_replaces(version: str) -> list[str]:
    """`k8s.io/<x>` for every `k8s.io/<x> => ./staging/src/k8s.io/<x>` in kubernetes' go.mod."""
    go = _go()
    env = _go_env()
    env["GOFLAGS"] = "-mod=mod"
    proc = subprocess.run(
        [go, "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
        cwd=HARNESS,
        env=env,
        capture_output=True,
        text=True,
    )
    info = json.loads(proc.stdout or "{}")
    if proc.returncode != 0 or "GoMod" not in info:
        raise BuildError(
            f"cannot fetch k8s.io/kubernetes@{version}: {info.get('Error') or proc.stderr}"
        )
    text = Path(info["GoMod"]).read_text()
    mods = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/src/\1\s*$", text, re.M)
    if not mods:
        raise BuildError(f"no staging replaces found in {info['GoMod']}")
    return mods


def regen(version: str = K8S_VERSION, etcd: str = ETCD_VERSION) -> None:
    go_directive = (
        "1.26.0" if GOTOOLCHAIN == "" else GOTOOLCHAIN.removeprefix("go").rsplit(".", 1)[0] + ".0"
    )
    staging = staging_replaces(version)
    v0 = "v0." + version.split(".", 1)[1]
    lines = [
        "// Generated by `python -m tests.k8s.build --regen`: the test control plane's module.",
        f"// Staging replaces come from k8s.io/kubernetes@{version}'s own go.mod",
        f"// (./staging/src/k8s.io/<x> => k8s.io/<x> {v0}).",
        f"module {MODULE}",
        "",
        f"go {go_directive}",
        "",
        "require (",
        f"\tgo.etcd.io/etcd/server/v3 {etcd}",
        f"\tk8s.io/kubernetes {version}",
        ")",
        "",
        "tool (",
        "\tk8s.io/kubernetes/cmd/kube-apiserver",
        "\tk8s.io/kubernetes/cmd/kube-controller-manager",
        ")",
        "",
        "replace (",
        *[f"\t{m} => {m} {v0}" for m in staging],
        ")",
        "",
    ]
    (HARNESS / "go.mod").write_text("\n".join(lines))
    (HARNESS / "go.sum").unlink(missing_ok=True)
    env = _go_env()
    env["GOFLAGS"] = "-mod=mod"
    proc = subprocess.run([_go(), "mod", "tidy"], cwd=HARNESS, env=env)
    if proc.returncode != 0:
        raise BuildError(
            "go mod tidy failed; see the output above for the module that cannot be had"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tests.k8s.build", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--force", action="store_true", help="rebuild even when the cached binaries are current"
    )
    p.add_argument(
        "--regen", action="store_true", help="regenerate go.mod/go.sum from upstream first"
    )
    p.add_argument("--version", default=K8S_VERSION)
    args = p.parse_args(argv)
    try:
        if args.regen:
            regen(args.version)
        result = ensure_built(args.version, force=args.force)
    except BuildError as exc:
        print(f"[k8s-build] FAILED: {exc}", file=sys.stderr)
        return 1
    what = "built" if result.built else "cached, up to date"
    took = f"{result.seconds:.1f}s"
    print(f"[k8s-build] Kubernetes {result.version} + etcd {ETCD_VERSION}: {what} in {took}")
    print(result.bin_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
