"""Apache Kafka jars, resolved once from Maven Central with `tools/kafka/pom.xml` into
`<cache_dir>/kafka-<version>/libs` and reused by every later run (and every clone)."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from mint.infra.process import InfraError, run_checked

KAFKA_VERSION = "4.4.0"
COMPLETE_MARKER = ".complete"


def find_pom() -> Path:
    override = os.environ.get("MINT_KAFKA_POM")
    if override:
        return Path(override)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "tools" / "kafka" / "pom.xml"
        if candidate.exists():
            return candidate
    raise InfraError(
        f"kafka: tools/kafka/pom.xml not found above {here.parent} (set MINT_KAFKA_POM to its path)"
    )


def kafka_home(cache_dir: Path) -> Path:
    return cache_dir / f"kafka-{KAFKA_VERSION}"


def ensure_kafka_libs(cache_dir: Path, log_path: Path) -> Path:
    """Return the directory holding the Kafka jars, resolving them with Maven if needed."""
    home = kafka_home(cache_dir)
    libs = home / "libs"
    if (libs / COMPLETE_MARKER).exists():
        return libs
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be resolving them right now
        if (libs / COMPLETE_MARKER).exists():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise InfraError(
                "kafka: Java is installed but Maven (`mvn`) is not, so the Kafka jars cannot be "
                "resolved; install maven (apt-get install maven)"
            )
        staging = home / f"libs.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [mvn, "-q", "-B", "-f", str(find_pom()), "dependency:copy-dependencies"]
        cmd += [f"-DoutputDirectory={staging}", "-Dmdep.overWriteIfNewer=true"]
        run_checked(cmd, "kafka", log_path, timeout=900, cwd=str(home))
        if not any(staging.glob("kafka_2.13-*.jar")):
            raise InfraError(f"kafka: Maven finished but no kafka_2.13 jar in {staging}")
        (staging / COMPLETE_MARKER).write_text(KAFKA_VERSION + "\n")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
    return libs
