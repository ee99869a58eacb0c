"""Mutation testing of the modules where a silent bug costs accuracy or data.

mutmut plants one small change at a time (an operator, a number, a string, a dropped argument) in the code below,
runs the tests that reach the changed function, and records whether any test failed. A change no test notices
either shows a missing test or changes nothing a user could see (an equivalent mutant): each survivor is killed by a
test or listed in bench/mutation_equivalents.toml with the reason. Slow (hours on 2 cores), so not part of
`make test`:

    make mutation                                   # every module below, then the table
    python bench/mutation.py --module metrics       # one module (repeatable)
    python bench/mutation.py --survivors            # only the mutants that survived the last run (after new tests)
    python bench/mutation.py --resume               # only the mutants an interrupted run did not reach
    python bench/mutation.py --timeouts             # again the mutants that timed out (run on an idle machine)
    python bench/mutation.py --report               # the table of the last run, nothing rerun

The files mutmut may change are `[tool.mutmut] only_mutate` in pyproject.toml; the tests it may run are
`pytest_add_cli_args_test_selection` there. The real GRID clips come from LIPAGENT_GRID_DIR (default ../shared/grid).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EQUIVALENTS = Path(__file__).with_name("mutation_equivalents.toml")

MODULES: dict[str, tuple[str, ...]] = {
    "crop": ("lipagent.transform.mouth.*", "lipagent.transform.pipeline.*", "lipagent.transform.pose.*"),
    "sampling": ("lipagent.transform.sampling.*",),
    "speech spans": ("lipagent.transform.speech.*",),
    "mosaic": ("lipagent.transform.mosaic.*",),
    "metrics": ("lipagent.scoring.metrics.*",),
    "constrained decoding": ("lipagent.model.constrained.*",),
    "answer mask": (
        "lipagent.model.prompt.*",
        "lipagent.model.training.x_to_training_rows__*",
        "lipagent.model.training.x_training_split__*",
        "lipagent.model.training.x__prepare_training_args__*",
    ),
    "outputs and overwrite": ("lipagent.outputs.*",),
    "records": ("lipagent.records.*",),
    "GGUF grammar": ("lipagent.gguf.gbnf.*",),
    "GGUF reader": ("lipagent.readers.gguf.*",),
}
"""Each module's mutants as mutmut names them (module path, then x_<function> or xǁ<class>ǁ<method>)."""

KILLED = {"killed", "timeout", "segfault", "caught by type check"}
SURVIVED = {"survived", "no tests"}
"""A mutant no test even reaches survives as surely as one the tests run past."""


def mutmut_config() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"]


def check_targets(selected: list[str]) -> None:
    """Every pattern must point into a file mutmut is told to mutate, or its module would silently count nothing."""
    files = {path.removesuffix(".py").replace("/", ".") for path in mutmut_config()["only_mutate"]}
    for module in selected:
        for pattern in MODULES[module]:
            owner = pattern.split(".x")[0].removesuffix(".*")
            if owner not in files:
                raise SystemExit(f"mutation: {pattern} ({module}) is outside [tool.mutmut] only_mutate")


def run_mutmut(patterns: list[str], max_children: int) -> None:
    grid = Path(os.environ.get("LIPAGENT_GRID_DIR", REPO.parent / "shared" / "grid")).resolve()
    if not (grid / "s1.zip").is_file():
        raise SystemExit(f"mutation: the real GRID samples are missing at {grid} (set LIPAGENT_GRID_DIR)")
    # Scripts the tests start (train/sft.py, push_to_hub.py) import lipagent from mutmut's copy, not the install. The
    # folder must exist before Python starts: a path missing then is remembered as having no modules.
    (REPO / "mutants").mkdir(exist_ok=True)
    path = os.pathsep.join(filter(None, [str(REPO / "mutants"), os.environ.get("PYTHONPATH")]))
    cache = REPO / "mutants" / ".test-cache"  # what tests may build once for every mutant (tests/test_gguf.py)
    shutil.rmtree(cache, ignore_errors=True)  # built afresh by each run, from the code it tests
    env = {**os.environ, "LIPAGENT_GRID_DIR": str(grid), "PYTHONPATH": path, "LIPAGENT_TEST_CACHE": str(cache)}
    # Each mutant's pytest run removes its temporary folders (a GB for the tests that build datasets and models, over
    # thousands of runs). Set here, not in [tool.mutmut]: a change there discards every result mutmut has cached.
    addopts = [os.environ.get("PYTEST_ADDOPTS", ""), "-o tmp_path_retention_policy=none"]
    env["PYTEST_ADDOPTS"] = " ".join(filter(None, addopts))
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *patterns]
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, cwd=REPO, env=env, check=False)


def statuses() -> dict[str, str]:
    """Every mutant's status from mutmut's records of the last run (mutants/**/*.meta)."""
    from mutmut.stats import status_by_exit_code

    found = {}
    for meta in (REPO / "mutants").rglob("*.py.meta"):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            found[name] = status_by_exit_code[code]
    return found


def equivalents() -> dict[str, str]:
    return tomllib.loads(EQUIVALENTS.read_text()).get("equivalent", {}) if EQUIVALENTS.is_file() else {}


def outcome(status: str) -> str:
    """A mutmut status as the table counts it: killed, survived, or as mutmut said (not checked, ...)."""
    return "killed" if status in KILLED else "survived" if status in SURVIVED else status


def table(selected: list[str], found: dict[str, str], known: dict[str, str]) -> tuple[str, list[str]]:
    """The kill-rate table (markdown) and the survivors nobody explained."""
    lines = [
        "| module | mutants | killed | equivalent | survived | not run | kill rate | of the killable |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    unexplained = []
    for module in selected:
        names = [n for n in found if any(fnmatch.fnmatchcase(n, p) for p in MODULES[module])]
        counts = Counter(outcome(found[n]) for n in names)
        survivors = [n for n in names if found[n] in SURVIVED]
        equivalent = sum(n in known for n in survivors)
        unexplained += [n for n in survivors if n not in known]
        ran = counts["killed"] + counts["survived"]
        not_run = len(names) - ran
        rate = counts["killed"] / ran if ran else 0.0
        killable = counts["killed"] / (ran - equivalent) if ran - equivalent else 0.0
        lines.append(
            f"| {module} | {len(names)} | {counts['killed']} | {equivalent} | {counts['survived'] - equivalent} | "
            f"{not_run} | {rate:.0%} | {killable:.0%} |"
        )
    return "\n".join(lines), sorted(unexplained)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", choices=list(MODULES), help="only this module (repeatable)")
    parser.add_argument("--report", action="store_true", help="print the table of the last run; run nothing")
    parser.add_argument("--survivors", action="store_true", help="rerun only the last run's surviving mutants")
    parser.add_argument("--resume", action="store_true", help="run only the mutants an interrupted run did not reach")
    parser.add_argument(
        "--timeouts",
        action="store_true",
        help="rerun the mutants that timed out (on a busy machine a slow test times out, which counts as a kill)",
    )
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    selected = args.module or list(MODULES)
    check_targets(selected)
    patterns = [pattern for module in selected for pattern in MODULES[module]]
    if args.survivors or args.resume or args.timeouts:
        wanted = SURVIVED if args.survivors else {"timeout"} if args.timeouts else {"not checked"}
        last = statuses()
        patterns = [n for n in last if last[n] in wanted and any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        if not patterns:
            print("mutation: nothing to run")
    if not args.report and patterns:
        run_mutmut(patterns, args.max_children)
    found = statuses()
    if not found:
        print("mutation: no results yet; run without --report first", file=sys.stderr)
        return 2
    text, unexplained = table(selected, found, equivalents())
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    stale = sorted(name for name in equivalents() if name not in found)
    if stale:
        print(f"\n{len(stale)} listed equivalent mutant(s) no longer exist (the code moved): {', '.join(stale)}")
    if unexplained:
        print(f"\n{len(unexplained)} surviving mutant(s) neither killed nor listed as equivalent:")
        print("\n".join(f"  {name}   (mutmut show {name})" for name in unexplained))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
