"""pytest plugin of `make mutation` (mutmut loads it: `[tool.mutmut] pytest_add_cli_args`).

mutmut runs, for each mutant, the tests that reached the mutated function, with ``-x``, in the
order of a set. Unit tests first: most mutants are killed by a unit test in well under a second,
and only the survivors of the unit tests start the session's embedded PostgreSQL and Kafka.

The pure rules (no I/O) are held to their unit tests alone: a mutant of ``mint.wallet.domain`` or
``mint.transactions.domain`` that only an integration test notices is reported as surviving, and
the integration suites never run for them (a mutant there costs a second, not a Kafka boot).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

UNIT_ONLY_MODULES = ("mint.wallet.domain.", "mint.transactions.domain.")


def pytest_sessionstart(session: pytest.Session) -> None:
    # mutmut runs pytest in its mutants/ copy; the venv's .pth also offers services/mint. A test
    # run on the unmutated package would let every mutant survive, so refuse it outright.
    import mint

    here = Path.cwd().resolve()
    if not Path(mint.__file__).resolve().is_relative_to(here):
        raise pytest.UsageError(f"mint is imported from {mint.__file__}, not from {here}")


def _is_unit(item: pytest.Item) -> bool:
    return item.nodeid.startswith("tests/unit/")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # mutmut names the mutant under test here: "<module>.x_<function>__mutmut_<n>"
    if os.environ.get("MUTANT_UNDER_TEST", "").startswith(UNIT_ONLY_MODULES):
        integration = [item for item in items if not _is_unit(item)]
        if integration:
            config.hook.pytest_deselected(items=integration)
            items[:] = [item for item in items if _is_unit(item)]
    items.sort(key=lambda item: not _is_unit(item))  # stable: each group keeps its own order
