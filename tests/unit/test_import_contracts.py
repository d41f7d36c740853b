"""The import contracts of `make lint` (.importlinter) hold for the code as it is, and fail
when a module breaks one — checked on a copy of the tree with a deliberate violation added."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree / "services"), str(tree / "operator")]),
    }
    return subprocess.run(
        [str(LINT_IMPORTS), str(tree / ".importlinter"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the code import-linter reads (the generated stubs included)."""
    copy = tmp_path_factory.mktemp("lint") / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "services", copy / "services", ignore=ignore)
    shutil.copytree(ROOT / "operator", copy / "operator", ignore=ignore)
    shutil.copy(ROOT / ".importlinter", copy / ".importlinter")
    return copy


def test_the_code_keeps_every_contract(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "source", "contract"),
    [
        (
            "mint/kit/probe.py",
            "import mint.wallet.actions\n",
            "The kit imports no service, runner or CLI",
        ),
        (
            "mint/kyc/probe.py",
            "import mint.wallet.store\n",
            "A service imports another only through its generated gRPC stubs or the contracts",
        ),
        (
            "mint/probe/store.py",
            "from fastapi import HTTPException\n",
            "Use cases, stores and domain rules import neither FastAPI, Starlette nor HTTP "
            "problems",
        ),
        (
            "mint/probe/domain.py",
            "import sqlalchemy\n",
            "Domain rules do no I/O (no database, no gRPC, no Kafka)",
        ),
    ],
)
def test_a_violation_fails_the_lint(tree: Path, module: str, source: str, contract: str) -> None:
    path = tree / "services" / module
    created = [p for p in [path.parent] if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    if created:
        (path.parent / "__init__.py").write_text("")
    path.write_text(source)
    try:
        result = lint_imports(tree)
    finally:
        path.unlink()
        for folder in created:
            shutil.rmtree(folder)
    assert result.returncode != 0, result.stdout
    squeezed = "".join(result.stdout.split())  # the report wraps long contract names
    assert "".join(contract.split()) + "BROKEN" in squeezed, result.stdout
    probe = module.removesuffix(".py").replace("/", ".")
    assert probe in result.stdout, result.stdout  # broken by the probe, not by something else
