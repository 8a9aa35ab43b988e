"""Mutation testing of impl/nnref against the framework-free conformance tests (mutmut 3).

    python tools/mutation.py [--jobs N] [--profile mutation|dev|ci] [--workdir DIR | --resume DIR]
                             [--keep]
                             [--min-score PERCENT] [MUTANT_GLOB ...]

mutmut 3 derives module names from file paths relative to its working directory (stripping only
a leading ``src.``), copies the sources into ``./mutants/`` and puts ``mutants/.`` and
``mutants/src`` first on ``sys.path``. So this script never runs mutmut in the repository: it
builds a scratch directory laid out the way mutmut expects,

    WORK/src/nnref/        a copy of impl/nnref (module names nnref.*)
    WORK/conformance/, WORK/fixtures/, WORK/conftest.py, ...
                           copies of the rest of the repository the suite needs (NOT_COPIED)
    WORK/mutation_guard.py a pytest plugin, see below
    WORK/pyproject.toml    [tool.mutmut] and the repository's [tool.pytest.ini_options]
                           (JSON strings and arrays are valid TOML)

and runs ``mutmut run`` there. The real impl/ is only read, never written; an editable or
installed nnref cannot shadow the mutants (mutmut puts WORK/mutants/src first on sys.path, and
the guard plugin refuses to run any test session whose ``nnref`` is not the mutated copy).

The guard plugin also selects the Hypothesis settings: ``--profile mutation`` (default) is the
``dev`` example counts (a quarter of ``ci``'s) but derandomised and without the example
database, so that a run is reproducible and a survivor list is stable; ``ci`` and ``dev`` are
the suite's own profiles.

Tests: everything under conformance/tests not marked torch, tf, jax or onnx (pytest -x; mutmut
runs, for each mutant, only the tests that executed the mutated function, fastest first), but the
few that start a user's pytest run importing nnref in a subprocess (SUBPROCESS_RUNS).

At the end the script prints the score (killed / total; a timeout or a crash of the test process
counts as killed) and, for every mutant not killed, its status and diff. Exit status: 0, or 1
when the score is below ``--min-score`` or mutmut failed.

``--self-check`` instead proves that the tests import the copy: mutmut on an intact copy must
succeed, and on a copy with a deliberately wrong ``pad`` appended to src/nnref/pad.py, its
initial test run must fail.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "impl" / "nnref"
# The framework-free tests (tox's core selection). Not the JAX and ONNX cross-checks: mutmut forks
# each mutant's test process from one that has already run them, and a forked child inherits
# XLA's and onnxruntime's thread pools in a state it cannot use: such a test hangs until the
# timeout, which would count a surviving mutant as killed.
CORE_MARKERS = "not torch and not tf and not jax and not onnx"
# Top-level entries of the repository NOT copied into the scratch directory: the package (copied
# to src/nnref instead), the configuration replaced by the generated pyproject.toml, VCS data,
# caches and build output. Everything else (conformance/, fixtures/, docs/, the root conftest.py,
# ...) is copied, since tests read files relative to the repository root.
NOT_COPIED = {
    "impl", "pyproject.toml", "tox.ini", "setup.cfg", "tools", ".git", ".tox", ".ci",
    ".hypothesis", ".pytest_cache", ".ruff_cache", ".benchmarks", ".mutmut-cache", "mutants",
    "build", "dist", "out",
}
IGNORE = ("__pycache__", "*.pyc", "*.egg-info", ".hypothesis", ".pytest_cache")
# Core tests left out of every run: each starts a user's pytest run in a subprocess that imports
# nnref. The mutated copy is on the test process's sys.path only (mutmut puts it there), and were
# it on the subprocess's path, mutmut's trampolines there would look for mutmut's configuration
# in the subprocess's working directory (a temporary directory) and fail. They test the
# conformance plugin and command line, not nnref.
SUBPROCESS_RUNS = (
    "conformance/tests/test_plugin_and_commands.py::"
    "test_not_implemented_error_marks_configurations_unsupported_and_checks_the_rest",
    "conformance/tests/test_plugin_and_commands.py::"
    "test_sigterm_still_prints_the_summary_and_the_junit_file",
    "conformance/tests/test_plugin_and_commands.py::"
    "test_xdist_prints_the_same_summary_as_a_serial_run",
    # every check there runs in a subprocess or a notebook kernel (the commands, not nnref)
    "conformance/tests/test_notebooks_sandbox_graders.py",
)

# The statuses mutmut 3 records (mutmut.stats.status_by_exit_code); anything else: suspicious.
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
          35: "suspicious", 36: "timeout", 37: "caught by type check", -24: "timeout",
          24: "timeout", 152: "timeout", 255: "timeout", -11: "segfault", -9: "segfault",
          2: "interrupted", None: "not checked"}
# A timeout (the mutant loops) and a crash of the test process (segfault: e.g. as_strided on
# None) are detections too.
KILLED = {"killed", "timeout", "segfault"}

# --self-check: appended to the copy of pad.py, a pad that is wrong everywhere.
BROKEN_PAD = """

# tools/mutation.py --self-check: a deliberately wrong pad (adds 1 to every element)
_self_check_pad = pad


def pad(*args, **kwargs):
    return _self_check_pad(*args, **kwargs) + 1
"""

GUARD = '''\
"""pytest plugin for the mutation run (generated by tools/mutation.py)."""

from pathlib import Path

import pytest

PROFILE = {profile!r}


def pytest_configure(config):
    import nnref

    where = Path(nnref.__file__).resolve()
    mutants = Path(__file__).resolve().parent / "src" / "nnref"
    if where.parent != mutants:
        raise pytest.UsageError(
            f"mutation run: tests would import nnref from {{where}}, not the mutants in "
            f"{{mutants}}"
        )
    if PROFILE == "mutation":
        # After the suite's pytest plugin loaded NNREF_PROFILE=dev, before any test module is
        # imported (their @settings capture the profile loaded now). No shrinking: a mutant's
        # verdict needs only whether a test fails, not the smallest input that makes it fail
        # (shrinking cost up to NNREF_SHRINK_SECONDS per killed mutant).
        from hypothesis import Phase, settings

        settings.register_profile(
            "nnref-mutation", parent=settings.get_profile("dev"), derandomize=True,
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        )
        settings.load_profile("nnref-mutation")
'''


def tree_digest(profile: str, deselect: list[str]) -> str:
    """A digest of everything a run's verdicts depend on: the package, every file copied beside
    it, the profile and the deselected tests. ``--resume`` continues a run only when it matches."""
    import fnmatch
    import hashlib

    h = hashlib.sha256(repr((profile, sorted(deselect), TIMEOUT_MULTIPLIER,
                             TIMEOUT_CONSTANT)).encode())
    tops = [PACKAGE] + [e for e in sorted(ROOT.iterdir())
                        if e.name not in NOT_COPIED and not any(e.match(p) for p in IGNORE)]
    for top in tops:
        files = [top] if top.is_file() else sorted(
            f for f in top.rglob("*") if f.is_file() and not any(
                fnmatch.fnmatch(part, pattern)
                for part in f.relative_to(ROOT).parts for pattern in IGNORE))
        for f in files:
            h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def build_workdir(work: Path, profile: str, deselect: list[str] | None = None) -> None:
    """Lay out WORK as described in the module docstring."""
    (work / "tree-digest").write_text(tree_digest(profile, deselect or []))
    ignore = shutil.ignore_patterns(*IGNORE)
    shutil.copytree(PACKAGE, work / "src" / "nnref", ignore=ignore)
    copied = []
    for entry in sorted(ROOT.iterdir()):
        if entry.name in NOT_COPIED or any(entry.match(p) for p in IGNORE):
            continue
        if entry.is_dir():
            shutil.copytree(entry, work / entry.name, ignore=ignore)
        else:
            shutil.copy2(entry, work / entry.name)
        copied.append(entry.name)
    (work / "mutation_guard.py").write_text(GUARD.format(profile=profile))
    copied.append("mutation_guard.py")
    ini = dict(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
               ["ini_options"])
    ini["testpaths"] = ["conformance/tests"]
    selection = ["conformance/tests", "-m", CORE_MARKERS]
    for nodeid in (*SUBPROCESS_RUNS, *(deselect or ())):
        selection += ["--deselect", nodeid]
    pytest_ini = "\n".join(f"{key} = {json.dumps(value)}" for key, value in ini.items())
    (work / "pyproject.toml").write_text(f"""\
[tool.mutmut]
source_paths = ["src/nnref"]
also_copy = {json.dumps(copied)}
pytest_add_cli_args_test_selection = {json.dumps(selection)}
pytest_add_cli_args = {json.dumps(["-p", "no:cacheprovider", "-p", "mutation_guard"])}
use_git_change_detection = false
timeout_multiplier = {TIMEOUT_MULTIPLIER}
timeout_constant = {TIMEOUT_CONSTANT}

[tool.pytest.ini_options]
{pytest_ini}
""")


# mutmut ends a mutant's test run after (estimate + TIMEOUT_CONSTANT) * TIMEOUT_MULTIPLIER seconds
# of wall time (and twice that in CPU time), the estimate being the covering tests' durations in
# its stats run, which ran them one at a time under its tracer (slower than a mutant's run). A
# surviving mutant runs the same tests on the same draws (the profile is derandomised), so its
# time is the estimate's; 6x leaves room for a machine shared by --jobs runs and the rest of the
# work on it. mutmut's default (15x) made each mutant that loops or rejects every draw cost minutes
# of CPU; a timeout counts as killed either way.
TIMEOUT_MULTIPLIER = 6.0
TIMEOUT_CONSTANT = 2.0
MUTMUT = "import sys; from mutmut.__main__ import cli; sys.argv[0] = 'mutmut'; cli()"
PROGRESS = re.compile(r"(\d+)/(\d+)\s+\S+ (\d+)\s+\S+ (\d+)\s+\S+ (\d+)\s+\S+ (\d+)\s+\S+ (\d+)")


def mutmut(work: Path, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    """``mutmut ARGS`` in WORK (through the module, so the current interpreter's mutmut)."""
    return subprocess.run([sys.executable, "-c", MUTMUT, *args], cwd=work, text=True,
                          capture_output=capture, check=False)


def mutmut_run(work: Path, args: list[str], every: float = 30.0) -> int:
    """``mutmut run ARGS``, its spinner output to WORK/mutmut-run.log; a progress line every
    ``every`` seconds here instead. Returns mutmut's exit status."""
    log_path = work / "mutmut-run.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-c", MUTMUT, "run", *args], cwd=work,
                                stdout=log, stderr=subprocess.STDOUT, text=True)
        start = time.monotonic()
        while proc.poll() is None:
            time.sleep(1.0)
            if time.monotonic() - start >= every:
                start = time.monotonic()
                with log_path.open(errors="replace") as f:
                    f.seek(max(0, log_path.stat().st_size - 4000))
                    found = PROGRESS.findall(f.read())
                if found:
                    done, total, killed, _, timeout, _, survived = found[-1]
                    print(f"    {done}/{total} mutants tested: {killed} killed, {timeout} "
                          f"timeouts, {survived} survived", flush=True)
    text = log_path.read_text(errors="replace")
    # mutmut's messages (and any error), without the spinner frames (braille characters)
    lines = [line for line in re.split(r"[\r\n]", text)
             if line.strip() and not "\u2800" <= line.lstrip()[0] <= "\u28ff"]
    print("\n".join(lines[-25:] if proc.returncode else lines[-2:]))
    print(f"    (mutmut's whole output: {log_path})")
    return proc.returncode


def results(work: Path) -> dict[str, str]:
    """mutant name -> status, from the .meta files mutmut writes next to each mutated file."""
    out = {}
    for meta in sorted((work / "mutants" / "src" / "nnref").glob("*.py.meta")):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            out[name] = STATUS.get(code, "suspicious")
    return out


def report(work: Path, status: dict[str, str], seconds: float) -> float:
    counts: dict[str, int] = {}
    for s in status.values():
        counts[s] = counts.get(s, 0) + 1
    killed = sum(counts.get(s, 0) for s in KILLED)
    total = len(status)
    score = 100.0 * killed / total if total else 0.0
    print()
    print("=" * 78)
    print(f"mutation score: {killed}/{total} = {score:.2f} % killed "
          f"(wall time {seconds / 60:.1f} min)")
    print("statuses: " + ", ".join(f"{s} {n}" for s, n in sorted(counts.items())))
    rest = sorted(name for name, s in status.items() if s not in KILLED)
    if rest:
        print(f"\n{len(rest)} mutants not killed:")
        for name in rest:
            print(f"    {name}: {status[name]}")
        print()
        for name in rest:
            shown = mutmut(work, "show", name, capture=True)
            print(shown.stdout.rstrip() or shown.stderr.rstrip())
            print()
    return score


def self_check(work: Path, profile: str, deselect: list[str]) -> int:
    """The tests must see the copy: the mutants of one small function are tested on the intact
    copy (must succeed), then on a copy with a deliberately wrong pad (mutmut's initial test
    run must fail). Exit status 0 when both hold."""
    control = work / "control"
    control.mkdir()
    build_workdir(control, profile, deselect)
    broken = work / "broken"
    broken.mkdir()
    build_workdir(broken, profile, deselect)
    with (broken / "src" / "nnref" / "pad.py").open("a") as f:
        f.write(BROKEN_PAD)
    ok = True
    for where, want_success in ((control, True), (broken, False)):
        run = mutmut(where, "run", "nnref.pad.x__check_mode*", capture=True)
        tail = "\n    ".join((run.stdout + run.stderr).strip().splitlines()[-4:])
        good = (run.returncode == 0) == want_success
        ok &= good
        print(f"{'ok' if good else 'FAILED'}: {where.name} copy: mutmut exit status "
              f"{run.returncode} (expected {'0' if want_success else 'non-zero'})\n    {tail}")
    print("self-check " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 2,
                   help="mutants tested in parallel (default: the number of CPUs)")
    p.add_argument("--profile", choices=["mutation", "dev", "ci"], default="mutation",
                   help="Hypothesis settings (default: dev example counts, derandomised)")
    p.add_argument("--workdir", type=Path,
                   help="scratch directory (must not exist; kept). Default: a temporary "
                        "directory, removed at the end unless --keep")
    p.add_argument("--resume", type=Path, metavar="DIR",
                   help="continue an interrupted run in DIR (a --workdir of the same tree, "
                        "profile and deselection; mutmut keeps each mutant's verdict there)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--min-score", type=float, default=0.0, metavar="PERCENT",
                   help="exit 1 when fewer than PERCENT %% of the mutants are killed")
    p.add_argument("--deselect", action="append", default=[], metavar="NODEID",
                   help="leave out a test (pytest --deselect), e.g. one failing for reasons "
                        "unrelated to nnref; mutmut needs a passing suite. Repeatable")
    p.add_argument("--self-check", action="store_true",
                   help="break the copied nnref on purpose and require the tests to fail")
    p.add_argument("mutants", nargs="*", metavar="MUTANT_GLOB",
                   help="only these mutants (mutmut names, globs allowed: 'nnref.max_pool.*')")
    args = p.parse_args(argv)

    if args.resume:
        work = args.resume.resolve()
        digest = (work / "tree-digest").read_text() if (work / "tree-digest").is_file() else ""
        if digest != tree_digest(args.profile, args.deselect):
            p.error(f"--resume {args.resume}: not a run of this tree with these options "
                    f"(the sources, the tests, the profile or the deselection differ)")
        args.workdir = work
    elif args.workdir:
        work = args.workdir.resolve()
        work.mkdir(parents=True, exist_ok=False)
    else:
        work = Path(tempfile.mkdtemp(prefix="nnref-mutation-"))
    os.environ["NNREF_PROFILE"] = "dev" if args.profile == "mutation" else args.profile
    os.environ.pop("NNREF_IMPL", None)  # the suite must check nnref, i.e. the mutants
    print(f"mutation workdir: {work} (profile {args.profile}, {args.jobs} jobs)", flush=True)
    try:
        if args.self_check:
            return self_check(work, args.profile, args.deselect)
        if not args.resume:
            build_workdir(work, args.profile, args.deselect)
        start = time.monotonic()
        returncode = mutmut_run(work, ["--max-children", str(args.jobs), *args.mutants])
        seconds = time.monotonic() - start
        status = results(work)
        if args.mutants:
            import fnmatch

            status = {k: v for k, v in status.items()
                      if any(fnmatch.fnmatch(k, g) or k == g for g in args.mutants)}
        if returncode != 0 or not status:
            print(f"mutmut run failed (exit status {returncode}); workdir kept: {work}")
            args.keep = True
            return 1
        score = report(work, status, seconds)
        return 0 if score >= args.min_score else 1
    finally:
        if args.keep or args.workdir:
            print(f"mutation workdir kept: {work} (mutmut show/results/browse work there)")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
