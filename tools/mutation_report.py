"""The end of `make mutation`: the score of each mutated module and its surviving mutants.

Reads mutmut's per-file results (``.mutation/mutants/<path>.meta``). The score is killed (a test
failed, or the mutant hung past its timeout) over the mutants that were tested; a mutant no test
reaches ("no tests") counts as a survivor. Run from anywhere: ``python tools/mutation_report.py``.
"""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / ".mutation"

# mutmut's exit codes (mutmut.stats.status_by_exit_code); anything else is "suspicious"
STATUS = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    -11: "segfault",
    -9: "segfault",
    37: "caught by type check",
}
COLUMNS = ("killed", "timeout", "survived", "no tests", "suspicious", "segfault", "not checked")


def status_of(exit_code: int | None) -> str:
    if exit_code is None:
        return "not checked"
    return STATUS.get(exit_code, "suspicious")


def main() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    survivors: list[str] = []
    header = f"{'module':<28}" + "".join(f"{c:>12}" for c in COLUMNS) + f"{'score':>8}"
    print(header)
    for path in config["only_mutate"]:
        meta = STAGE / "mutants" / f"{path}.meta"
        module = path.removesuffix(".py").replace("/", ".")
        if not meta.exists():
            print(f"{module:<28} (not run)")
            continue
        results: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        counts = Counter(status_of(code) for code in results.values())
        tested = sum(counts[c] for c in ("killed", "timeout", "survived", "no tests"))
        dead = counts["killed"] + counts["timeout"]
        score = f"{100 * dead / tested:.1f}%" if tested else "-"
        print(f"{module:<28}" + "".join(f"{counts[c]:>12}" for c in COLUMNS) + f"{score:>8}")
        survivors += sorted(
            name for name, code in results.items() if status_of(code) in {"survived", "no tests"}
        )
    if survivors:
        print(f"\n{len(survivors)} surviving mutants (`mutmut show NAME` in .mutation/):")
        for name in survivors:
            print(f"  {name}")


if __name__ == "__main__":
    main()
