"""Names of a sample of the mutants of `make mutation`: for each module matching a pattern (all
of ``[tool.mutmut] only_mutate`` without one), ``size`` mutants evenly spread over its sorted
mutant names, so every function of the module is likely represented.

Run where mutmut runs (``.mutation/``): ``python tools/mutation_sample.py 40 'mint.wallet.*'``.
The sample is deterministic: the same source gives the same names, run after run.
"""

from __future__ import annotations

import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

from mutmut.mutation.file_mutation import mutate_file_contents
from mutmut.utils.format_utils import get_mutant_name


def sample(size: int, patterns: list[str]) -> list[str]:
    config = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["mutmut"]
    chosen: list[str] = []
    for path in config["only_mutate"]:
        module = path.removesuffix(".py").replace("/", ".")
        if patterns and not any(fnmatch(module, pattern) for pattern in patterns):
            continue
        mutated = mutate_file_contents(path, Path(path).read_text())
        names = sorted(get_mutant_name(Path(path), name) for name in mutated.mutant_names)
        step = max(1.0, len(names) / size)
        chosen += [names[int(i * step)] for i in range(min(size, len(names)))]
    return chosen


if __name__ == "__main__":
    print("\n".join(sample(int(sys.argv[1]), sys.argv[2:])))
