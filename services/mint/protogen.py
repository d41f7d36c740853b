"""Generate the gRPC stubs: ``protos/mint/<svc>/v1/*.proto`` → ``services/mint/<svc>/v1/``.

Run as ``python -m mint.protogen`` (``make protos``). Output is gitignored; the import path of the
generated modules (``mint.<svc>.v1.<svc>_pb2``) matches the proto path, so no rewriting is needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    from grpc_tools import protoc

    protos = sorted((ROOT / "protos").rglob("*.proto"))
    out = ROOT / "services"
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{ROOT / 'protos'}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *[str(p) for p in protos],
    ]
    rc: int = protoc.main(args)
    if rc != 0:
        print("protoc failed", file=sys.stderr)
        return rc
    for proto in protos:
        pkg_dir = out / proto.relative_to(ROOT / "protos").parent
        (pkg_dir / "__init__.py").touch()
    print(f"generated stubs for {len(protos)} proto file(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
