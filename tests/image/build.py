"""Build the Mint image with Debian's buildah (no Docker daemon here), cached under ~/.cache/mint.

Two steps, each keyed by a hash of its inputs and skipped when the key matches:

1. The base: ``debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3
   bookworm`` into a rootfs, tarred to ``~/.cache/mint/image-base-<key>/rootfs.tar`` and imported
   as ``localhost/mint-base:<key>`` (about 3 minutes cold).
2. The image: ``buildah bud`` of the repository's Dockerfile with ``PYTHON_IMAGE`` set to that
   base, tagged ``localhost/mint:<key>`` where the key hashes the Dockerfile, .dockerignore and
   every file the Dockerfile copies (pyproject.toml, protos/, services/, operator/).

buildah runs rootful with ``--storage-driver vfs`` and ``--isolation chroot`` (no overlay or
user namespaces needed) and keeps its storage in ``~/.cache/mint/buildah``. The machine's CA
trust reaches the build's pip only when present here: ``SSL_CERT_FILE`` is mounted read-only
into the RUN steps and named by the ``MINT_BUILD_CA`` build argument (nothing machine-specific
goes into the Dockerfile or the image).

    python -m tests.image.build            # build what is missing, print the image name
    python -m tests.image.build --base     # only the base
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
VARIANT = "minbase"
INCLUDE = ("python3", "python3-venv", "python-is-python3")
MIRROR = os.environ.get("MINT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What the image is built from: the Dockerfile's COPY sources (.dockerignore decides the rest).
IMAGE_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "protos", "services", "operator")
# Inside the build's RUN steps the host CA bundle is mounted here (read-only) when present.
BUILD_CA_PATH = "/run/mint-build-ca.pem"


class ImageBuildError(RuntimeError):
    """The base or the image could not be built."""


@dataclass(frozen=True)
class BuiltImage:
    name: str
    built: bool  # False when the cached image was reused
    seconds: float


def cache_root() -> Path:
    base = os.environ.get("MINT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mint"
    )
    return Path(base)


def buildah_command(*args: str) -> list[str]:
    """buildah on the cached vfs storage (its own root: nothing else on the machine is used)."""
    storage = cache_root() / "buildah"
    return [
        "buildah",
        "--root",
        str(storage / "root"),
        "--runroot",
        str(storage / "run"),
        "--storage-driver",
        "vfs",
        *args,
    ]


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, text=True, capture_output=True, check=False, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        raise ImageBuildError(f"{' '.join(cmd[:6])} ... failed ({proc.returncode}):\n{tail}")
    return proc  # type: ignore[no-any-return]


def base_key() -> str:
    inputs = {"suite": SUITE, "variant": VARIANT, "include": INCLUDE, "mirror": MIRROR}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def image_exists(name: str) -> bool:
    proc = subprocess.run(
        buildah_command("inspect", "--type", "image", name), capture_output=True, check=False
    )
    return proc.returncode == 0


def build_base() -> BuiltImage:
    """debootstrap the base rootfs (cached as a tarball) and import it into buildah's storage."""
    key = base_key()
    name = f"localhost/mint-base:{key}"
    started = time.monotonic()
    if image_exists(name):
        return BuiltImage(name, built=False, seconds=time.monotonic() - started)
    for tool in ("buildah", "debootstrap"):
        if shutil.which(tool) is None:
            raise ImageBuildError(f"{tool} is not installed (make test installs it with apt)")
    cache = cache_root() / f"image-base-{key}"
    tarball = cache / "rootfs.tar"
    if not tarball.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as work:
            rootfs = Path(work) / "rootfs"
            _run(
                [
                    "debootstrap",
                    f"--variant={VARIANT}",
                    f"--include={','.join(INCLUDE)}",
                    SUITE,
                    str(rootfs),
                    MIRROR,
                ]
            )
            # Package lists and caches are not part of a base image.
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                shutil.rmtree(rootfs / junk, ignore_errors=True)
            partial = cache / "rootfs.tar.partial"
            _run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."])
            partial.rename(tarball)
    container = _run(buildah_command("from", "scratch")).stdout.strip()
    try:
        mount = _run(buildah_command("mount", container)).stdout.strip()
        _run(["tar", "-C", mount, "--numeric-owner", "-xf", str(tarball)])
        _run(buildah_command("umount", container))
        _run(buildah_command("config", "--cmd", "python3", container))
        _run(buildah_command("commit", "--quiet", container, name))
    finally:
        subprocess.run(buildah_command("rm", container), capture_output=True, check=False)
    return BuiltImage(name, built=True, seconds=time.monotonic() - started)


def _excluded(rel: Path) -> bool:
    """What .dockerignore keeps out of the context (generated stubs, caches)."""
    parts = rel.parts
    if any(p == "__pycache__" or p.endswith((".egg-info", "_cache")) for p in parts):
        return True
    if rel.suffix == ".pyc":
        return True
    # services/mint/<service>/v1/: gRPC stubs, regenerated in the build
    return len(parts) >= 4 and parts[0] == "services" and parts[3] == "v1"


def image_inputs() -> list[Path]:
    files: list[Path] = []
    for entry in IMAGE_INPUTS:
        path = REPO / entry
        if path.is_file():
            files.append(path)
            continue
        files += [
            f for f in sorted(path.rglob("*")) if f.is_file() and not _excluded(f.relative_to(REPO))
        ]
    return files


def image_key(base: str) -> str:
    h = hashlib.sha256(base.encode())
    for path in image_inputs():
        h.update(str(path.relative_to(REPO)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def build_ca_bundle() -> Path | None:
    """The CA bundle this machine's pip trusts, if any (SSL_CERT_FILE / PIP_CERT)."""
    for var in ("PIP_CERT", "SSL_CERT_FILE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value).resolve()
    return None


def build_image(log: bool = False) -> BuiltImage:
    """The base if needed, then the image of the current sources (cached by their hash)."""
    base = build_base()
    key = image_key(base.name)
    name = f"localhost/mint:{key}"
    started = time.monotonic()
    if image_exists(name):
        return BuiltImage(name, built=False, seconds=time.monotonic() - started)
    args = [
        "bud",
        "--isolation",
        "chroot",
        "--network",
        "host",
        "--pull=never",
        "--build-arg",
        f"PYTHON_IMAGE={base.name}",
        "--tag",
        name,
        "--file",
        str(REPO / "Dockerfile"),
    ]
    ca = build_ca_bundle()
    if ca is not None:
        args += ["-v", f"{ca}:{BUILD_CA_PATH}:ro", "--build-arg", f"MINT_BUILD_CA={BUILD_CA_PATH}"]
    args.append(str(REPO))
    proc = subprocess.run(
        buildah_command(*args),
        text=True,
        stdout=None if log else subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise ImageBuildError(
            f"buildah bud failed ({proc.returncode}):\n{(proc.stdout or '')[-4000:]}"
        )
    _remove_other_images(name)
    return BuiltImage(name, built=True, seconds=time.monotonic() - started)


def _remove_other_images(keep: str) -> None:
    """vfs keeps full copies: drop images of older sources and dangling build stages."""
    listing = subprocess.run(
        buildah_command("images", "--format", "{{.Name}}:{{.Tag}}"),
        capture_output=True,
        text=True,
        check=False,
    )
    for image in listing.stdout.split():
        if image.startswith("localhost/mint:") and image != keep:
            subprocess.run(buildah_command("rmi", image), capture_output=True, check=False)
    subprocess.run(buildah_command("rmi", "--prune"), capture_output=True, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", action="store_true", help="only build the base")
    args = parser.parse_args(argv)
    try:
        result = build_base() if args.base else build_image(log=True)
    except ImageBuildError as exc:
        print(f"image build failed: {exc}", file=sys.stderr)
        return 1
    print(f"{result.name} ({'built' if result.built else 'cached'} in {result.seconds:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
