"""The suite's pytest plugin: the implementation under test, profiles, markers and the summary.

Loaded by the ``pytest11`` entry point once the package is installed (and by the checkout's
``conftest.py`` when run from a source tree), so from any directory::

    pytest --pyargs conformance --impl MODULE [-m values] [-n auto]
    python -m conformance check MODULE [pytest arguments]

- ``--impl MODULE`` (or ``NNREF_IMPL``): the module checked instead of nnref. A module that
  cannot be imported ends the run before collection (pytest's usage error, exit status 4).
- markers: ``values`` (outputs and gradients) and ``arguments`` (invalid-argument behaviour) are
  set on every test that calls the implementation under test, so ``-m values`` judges the
  numbers alone; ``torch`` / ``tf`` / ``jax`` / ``onnx`` tests are deselected, with one line
  saying so, when the framework is not installed (an error instead when
  ``NNREF_REQUIRE_FRAMEWORKS`` names it);
  ``checkout`` tests (project consistency: docs, the source tree) need a source checkout.
- the contract summary: per op and direction, the verdict of the values tests and of the
  argument tests, counting only tests that called that function of the implementation under test,
  plus what it declared or reported as unsupported. Each test's contribution travels on its
  report (``user_properties``), so the summary is the same with pytest-xdist (``-n``).
- SIGTERM (``timeout``, a CI runner giving up) is turned into an interrupt, so the summary of what
  ran (and a junit file, when asked) is still written.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re
import signal
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from . import frameworks, profiles, sampler
from .backends import BACKENDS
from .impl_under_test import (
    CONTRACT_FUNCTIONS,
    ENV_VAR,
    LIMITS_ATTR,
    ImplUnderTest,
    NotSupported,
    declared_limits,
    impl_name,
    load_impl,
)
from .low_precision import (
    ACCUMULATION_ATTR,
    TF32_ATTR,
    declared_accumulation,
    declares_tf32,
    storage_declarations,
)
from .ops import op_and_direction
from .paths import checkout_root

frameworks.tf_environment()  # before any test module imports TensorFlow
profiles.load()

_IMPL_KEY = pytest.StashKey[ImplUnderTest]()
_STATE_KEY = pytest.StashKey["_State"]()
# The running config (pytest_runtest_logreport is not given one).
_CONFIG: dict[str, pytest.Config] = {}
PROPERTY = "nnref-conformance"
HEADROOM_PROPERTY = "nnref-headroom"
CATEGORIES = ("values", "arguments")
# Framework markers and the package each needs, from the backend registry (the first backend
# of a marker decides: onnx-ref's onnx for the onnx marker).
FRAMEWORK_MARKERS: dict[str, str] = {}
for _row in BACKENDS:
    if _row.marker:
        FRAMEWORK_MARKERS.setdefault(_row.marker, _row.package)
# A module attribute: True when the module defines no behaviour for NaN, infinities and signed
# zeros (a binding of a course API): the tests that plant them are left out, with the reason.
FINITE_ONLY_ATTR = "CONFORMANCE_FINITE_ONLY"

MARKERS = {
    "torch": "needs torch (deselected when it is not installed)",
    "tf": "needs TensorFlow (deselected when it is not installed)",
    "jax": "needs JAX (deselected when it is not installed)",
    "onnx": "needs onnx, and onnxruntime for its half (deselected when onnx is not installed)",
    "values": "checks outputs and gradients of the implementation under test",
    "arguments": "checks how the implementation under test treats invalid arguments",
    "checkout": "reads files that exist only in a source checkout (docs, the source tree)",
    "checks(*functions)": "the contract functions a test judges (default: the ones it calls)",
    "nonfinite": "plants NaN, infinities and signed zeros in the inputs (left out for a "
                 "binding whose API defines no non-finite values)",
    "low_precision": "float16 / bfloat16 inputs, judged by the module's declared accumulation "
                     "(left out when it declares none: CONFORMANCE_ACCUMULATION)",
    "tf32": "float32 matrix ops judged as computing from TF32-rounded inputs (left out unless "
            "the module declares CONFORMANCE_TF32 = True)",
}


class _State:
    """What the summary needs, aggregated from the test reports."""

    def __init__(self) -> None:
        # (op, direction) -> category -> outcome -> count
        self.results: dict[tuple[str, str], dict[str, Counter[str]]] = defaultdict(
            lambda: defaultdict(Counter))
        self.unsupported: Counter[tuple[str, str]] = Counter()  # (function, message) -> calls
        self.notes: list[str] = []  # deselections, one line each
        self.module: Any = None
        self.limits: dict[str, dict[str, Any]] = {}
        self.accumulation: str | None = None  # CONFORMANCE_ACCUMULATION (conformance.low_precision)
        self.failures: list[dict[str, Any]] = []  # conformance.verdicts failure records
        # progress lines on long runs: contract function -> outcome -> count, and when the
        # last lines were written
        self.progress: dict[str, Counter[str]] = defaultdict(Counter)
        self.reported: dict[str, Counter[str]] = {}
        self.started = time.monotonic()
        self.last_progress = self.started


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--impl", default=None,
        help=f"module to check instead of nnref (also the {ENV_VAR} environment variable)",
    )
    parser.addoption(
        "--api", default=None,
        help="check --impl TARGET through a binding: cs231n, deeplearning-ai, fau, or a .py "
             "file defining BINDING (conformance.bindings)",
    )
    parser.addoption(
        "--verdicts-json", default=None, metavar="FILE",
        help="write the verdicts (per function: verdict, counts, failures with reproducers; "
             "unsupported causes) to FILE as JSON (conformance.verdicts)",
    )
    parser.addoption(
        "--quick", action="store_true", default=False,
        help="a quick verdict (a homework in under a minute): the derandomised 'quick' "
             "profile and no framework cross-checks (SciPy's, finite differences, the golden "
             "fixtures and the properties still judge every function)",
    )
    parser.addoption(
        "--skip-grader-cells", action="store_true", default=False,
        help="a notebook target: leave out nbgrader test cells and cells Otter ignores",
    )
    parser.addoption(
        "--cell-timeout", type=float, default=60.0, metavar="SECONDS",
        help="a notebook target: the wall-clock limit of each cell (default 60)",
    )


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum} (SIGTERM)")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    state = config.stash[_STATE_KEY] = _State()
    _CONFIG["config"] = config
    if config.option.help or config.option.version:
        return
    if config.getoption("--quick"):
        # a quick verdict: a failure shrinks for a second, not five (NNREF_SHRINK_SECONDS wins)
        os.environ[profiles.PROFILE_ENV] = "quick"
        os.environ.setdefault(profiles.SHRINK_ENV, str(profiles.QUICK_SHRINK_SECONDS))
        profiles.load()
    missing = [m for m in sorted(frameworks.required()) if importlib.util.find_spec(m) is None]
    if missing:
        raise pytest.UsageError(
            f"{frameworks.ENV_VAR}={os.environ.get(frameworks.ENV_VAR)!r} names "
            f"{', '.join(missing)}, which cannot be imported here")
    name = impl_name(config.getoption("--impl"))
    api = config.getoption("--api")
    try:
        if name.endswith(".ipynb"):
            from . import notebook

            notebook.SETTINGS.update(skip_grader_cells=config.getoption("--skip-grader-cells"),
                                     cell_timeout=config.getoption("--cell-timeout"))
            notebook.register()
        if api:
            from .bindings import bind, reproducer_loader
            from .cases import IMPL_LOADERS

            state.module = bind(name, api)
            IMPL_LOADERS[name] = reproducer_loader(name, api)
        elif name.endswith(".ipynb"):
            from .cases import IMPL_LOADERS

            state.module = notebook.load_notebook(name)
            IMPL_LOADERS[name] = notebook.reproducer_loader(name)
        elif name.endswith(".py") and os.path.isfile(name):
            from .bindings.targets import import_file
            from .cases import IMPL_LOADERS

            path = os.path.abspath(name)
            state.module = import_file(Path(path))
            IMPL_LOADERS[name] = ("from pathlib import Path; from conformance.bindings.targets "
                                  f"import import_file; impl = import_file(Path({path!r}))")
        else:
            state.module = load_impl(name)
        state.limits = declared_limits(state.module)
        state.accumulation = declared_accumulation(state.module)
    except Exception as exc:  # any failure to import is a setup error, reported once
        text = (str(exc).strip().splitlines() or [""])[0]
        what = f"{name!r} through --api {api}" if api else f"module {name!r}"
        raise pytest.UsageError(
            f"--impl {name}: cannot use {what}: {type(exc).__name__}: {text}") from None
    sampler.set_limits(state.limits)
    if hasattr(config, "workerinput"):  # a pytest-xdist worker ships its records
        from . import harness

        harness.SHIPPING = True
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash[_STATE_KEY]
    name = impl_name(config.getoption("--impl"))
    where = getattr(state.module, "__file__", "?")
    versions = ", ".join(
        f"{d} {_version(d)}"
        for d in dict.fromkeys(("nnref", "numpy", "hypothesis",
                                *(b.distribution for b in BACKENDS)))
    )
    lines = [
        f"nnref conformance: implementation under test: {name} ({where})"
        + (f" through --api {config.getoption('--api')}" if config.getoption("--api") else ""),
        f"hypothesis profile: {profiles.active_profile()} ({profiles.PROFILE_ENV}); {versions}",
        f"python {platform.python_version()} on {platform.platform()}",
    ]
    if state.limits:
        lines.append(f"declared limits ({LIMITS_ATTR}): {_limits_text(state.limits)}")
    if state.accumulation is not None:
        lines.append(f"float16 / bfloat16 judged as accumulating in "
                     f"{'float32' if state.accumulation == 'float32' else 'the storage format'}"
                     f" ({ACCUMULATION_ATTR} = {state.accumulation!r})")
        if storage := storage_declarations(state.module):
            names = sorted(storage)
            lines.append(f"  except {len(names)} declared as accumulating in the storage format: "
                         f"{', '.join(names[:8])}{', ...' if len(names) > 8 else ''}")
    lines += [f"notebook cell failed (the other cells still ran): {e}" for e in _cell_errors()]
    return lines


def _cell_errors() -> list[str]:
    """The notebook target's failed cells, each with its number and first lines."""
    notebook = sys.modules.get("conformance.notebook")
    return [e.describe() for e in notebook.CELL_ERRORS] if notebook is not None else []


def _limits_text(limits: dict[str, dict[str, Any]]) -> str:
    return "; ".join(f"{op}: " + ", ".join(f"{k}={v!r}" for k, v in params.items())
                     for op, params in limits.items())


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Set the values / arguments markers; deselect what this installation cannot run."""
    state = config.stash[_STATE_KEY]
    for item in items:
        if "impl" in getattr(item, "fixturenames", ()) and not item.get_closest_marker(
                "arguments"):
            item.add_marker(pytest.mark.values)
    drop: dict[str, list[pytest.Item]] = {}
    for marker, module in FRAMEWORK_MARKERS.items():
        if importlib.util.find_spec(module) is None:
            drop[f"{module} is not installed"] = [
                i for i in items if i.get_closest_marker(marker)]
    if checkout_root() is None:
        drop["project-consistency tests need a source checkout"] = [
            i for i in items if i.get_closest_marker("checkout")]
    if state.limits:
        drop[f"ranks outside the declared limits ({LIMITS_ATTR})"] = [
            i for i in items if _rank_outside_limits(i, state.limits)]
    if state.accumulation is None:
        drop[f"float16 / bfloat16: the module declares no {ACCUMULATION_ATTR}"] = [
            i for i in items if i.get_closest_marker("low_precision")]
    if not declares_tf32(state.module):
        drop[f"TF32: the module does not declare {TF32_ATTR} = True"] = [
            i for i in items if i.get_closest_marker("tf32")]
    if getattr(state.module, FINITE_ONLY_ATTR, False):
        drop[f"non-finite inputs: the API defines none ({FINITE_ONLY_ATTR})"] = [
            i for i in items if i.get_closest_marker("nonfinite")]
    if config.getoption("--quick"):
        drop["--quick: the framework cross-checks"] = [
            i for i in items if any(i.get_closest_marker(m) for m in FRAMEWORK_MARKERS)]
    gone: set[int] = set()
    for reason, dropped in drop.items():
        dropped = [i for i in dropped if id(i) not in gone]
        if dropped:
            gone.update(id(i) for i in dropped)
            state.notes.append(f"{reason}: {len(dropped)} tests deselected")
    if gone:
        config.hook.pytest_deselected(items=[i for i in items if id(i) in gone])
        items[:] = [i for i in items if id(i) not in gone]


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    return list(config.stash[_STATE_KEY].notes)


@pytest.fixture(scope="session")
def impl_name_opt(request: pytest.FixtureRequest) -> str:
    return impl_name(request.config.getoption("--impl"))


@pytest.fixture(scope="session")
def impl(request: pytest.FixtureRequest, impl_name_opt: str) -> ImplUnderTest:
    """The module under test (nnref unless --impl / NNREF_IMPL say otherwise)."""
    module = request.config.stash[_STATE_KEY].module or load_impl(impl_name_opt)
    wrapped = ImplUnderTest(module, impl_name_opt)
    request.config.stash[_IMPL_KEY] = wrapped
    return wrapped


def pytest_runtest_setup(item: pytest.Item) -> None:
    wrapped = item.config.stash.get(_IMPL_KEY, None)
    if wrapped is not None:
        wrapped.called.clear()
        wrapped.unsupported.clear()


def _category(item: pytest.Item) -> str | None:
    for category in CATEGORIES:
        if item.get_closest_marker(category):
            return category
    return None


def _rank_outside_limits(item: pytest.Item, limits: dict[str, dict[str, Any]]) -> bool:
    """A test parametrised with an op record and a rank the declared limits exclude."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    record, rank = params.get("record", params.get("rec")), params.get("rank")
    if record is None or not isinstance(rank, int) or not hasattr(record, "functions"):
        return False
    names = {getattr(record, "name", ""), *record.functions(rank)}
    return any(op in names and "rank" in p and not sampler.allowed(rank, p["rank"])
               for op, p in limits.items())


def _all_unsupported(call: pytest.CallInfo, wrapped: ImplUnderTest | None) -> str | None:
    """Why the test is 'not supported' rather than failed: every configuration it tried raised
    NotImplementedError (outside Hypothesis, or Hypothesis found no supported example), or
    Hypothesis found no configuration within the declared limits."""
    if call.excinfo is None or wrapped is None:
        return None
    from hypothesis.errors import Unsatisfiable

    if not wrapped.unsupported:
        limits = getattr(wrapped.module, LIMITS_ATTR, None)
        if limits and call.excinfo.errisinstance(Unsatisfiable):
            return f"{wrapped.__name__}: no configuration within the declared limits"
        return None
    if call.excinfo.errisinstance((NotSupported, Unsatisfiable)):
        (function, message), _ = wrapped.unsupported.most_common(1)[0]
        return f"{wrapped.__name__}.{function}: not supported ({message})"
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    wrapped = item.config.stash.get(_IMPL_KEY, None)
    if report.when == "call":
        reason = _all_unsupported(call, wrapped)
        if reason is not None:
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {reason}")
    if report.when == "call" or (report.when == "setup" and report.skipped):
        category = _category(item)
        entry: dict[str, Any] = {"category": category, "judged": [], "missing": None,
                                 "unsupported": []}
        marker = item.get_closest_marker("checks")
        if report.skipped and "does not implement" in str(report.longrepr):
            missing = str(report.longrepr).split("does not implement ")[-1]
            entry["missing"] = re.match(r"\w*", missing).group(0)
        elif report.when == "call" and wrapped is not None:
            # only tests that reached the implementation under test count
            judged = (set(marker.args) if marker else set(wrapped.called)) if wrapped.called \
                else set()
            if report.failed and call.excinfo is not None:
                entry["failures"] = _failures(item, call.excinfo.value, report)
            failed = {f["contract"] for f in entry.get("failures", ())} & judged
            if failed:  # the failures name their functions: only those are charged
                judged = failed
            entry["judged"] = sorted(judged)
            entry["outcome"] = report.outcome
            entry["unsupported"] = [[f, m, n] for (f, m), n in wrapped.unsupported.items()]
        report.user_properties.append((PROPERTY, entry))
    if report.when == "teardown" and hasattr(item.config, "workerinput"):
        # a pytest-xdist worker: its headroom and throughput records go to the controller
        from .harness import drain

        report.user_properties.append((HEADROOM_PROPERTY, drain()))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Aggregate each test's contribution (also for reports sent by pytest-xdist workers)."""
    config = _CONFIG.get("config")
    if config is None:
        return
    state = config.stash[_STATE_KEY]
    for key, entry in report.user_properties:
        if key == HEADROOM_PROPERTY and not hasattr(config, "workerinput"):
            from .harness import merge

            merge(entry)
        if key != PROPERTY:
            continue
        category = entry["category"] or "values"
        if entry["missing"]:
            state.results[op_and_direction(entry["missing"])][category]["missing"] += 1
        for function in entry["judged"]:
            outcome = entry.get("outcome", "passed")
            state.results[op_and_direction(function)][category][outcome] += 1
            state.progress[function][outcome] += 1
        for function, message, count in entry["unsupported"]:
            state.unsupported[(function, message)] += count
        state.failures.extend(entry.get("failures", ()))
    if not hasattr(config, "workerinput"):
        _progress(config, state)


PROGRESS_ENV = "NNREF_PROGRESS_SECONDS"
DEFAULT_PROGRESS_SECONDS = 30.0


def _progress(config: pytest.Config, state: _State) -> None:
    """On a long run, every NNREF_PROGRESS_SECONDS (default: 30 under ``python -m conformance
    check``, never in a plain pytest run of the suite; 0: never): one line per function whose
    counts changed since the last lines, in the user's names."""
    from .sandbox import SANDBOXED_ENV

    default = DEFAULT_PROGRESS_SECONDS if os.environ.get(SANDBOXED_ENV) else 0.0
    try:
        every = float(os.environ.get(PROGRESS_ENV, default))
    except ValueError:
        every = default
    now = time.monotonic()
    if every <= 0 or now - state.last_progress < every:
        return
    state.last_progress = now
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    for line in progress_lines(state, now - state.started):
        reporter.ensure_newline()
        reporter.write_line(line)


def progress_lines(state: _State, elapsed: float) -> list[str]:
    """The progress lines due: functions whose counts changed since the last ones."""
    label = getattr(state.module, "user_label", None)
    lines = []
    for function, counts in sorted(state.progress.items()):
        shown_counts = Counter(passed=counts["passed"], failed=counts["failed"])
        if state.reported.get(function) == shown_counts or not sum(shown_counts.values()):
            continue
        state.reported[function] = shown_counts
        name = label(function) if callable(label) else function
        shown = name if name == function else f"{name} ({function})"
        verdict_so_far = "FAILING" if counts["failed"] else "ok so far"
        lines.append(f"[{elapsed:5.0f} s] {shown}: {verdict_so_far}, {counts['passed']} "
                     f"passed, {counts['failed']} failed")
    return lines


def _failures(item: pytest.Item, exc: BaseException, report: Any) -> list[dict[str, Any]]:
    """The test's failures in the user's words, each its own entry in every report."""
    from .verdicts import report_failures

    config = item.config
    wrapped = config.stash.get(_IMPL_KEY, None)
    marker = item.get_closest_marker("checks")
    judged = set(marker.args) if marker else set(wrapped.called if wrapped else ())
    return report_failures(report, exc, config.stash[_STATE_KEY].module,
                           impl_name(config.getoption("--impl")), item.nodeid,
                           item.user_properties,
                           judged=judged.pop() if len(judged) == 1 else None,
                           rerun=_rerun_command(config, item))


def _rerun_command(config: pytest.Config, item: pytest.Item) -> str:
    """The command that runs this one test again on the same code."""
    import shlex

    target = impl_name(config.getoption("--impl"))
    api = config.getoption("--api")
    words = ["python", "-m", "conformance", "check", target, *(["--api", api] if api else []),
             "-p", "no:randomly", "-k", item.name]
    return " ".join(shlex.quote(w) for w in words)


def _headroom_summary(tr: Any) -> None:
    from .harness import HEADROOM, THROUGHPUT

    if THROUGHPUT:
        tr.section("cross-check throughput")
        for backend, (count, seconds) in sorted(THROUGHPUT.items()):
            tr.write_line(f"{backend:<12} {int(count):>6} examples in {seconds:7.1f} s: "
                          f"{count / max(seconds, 1e-9):7.1f} examples/s")
    if HEADROOM:
        tr.section("headroom: largest |error| / tolerance (1.0 = at the tolerance)")
        for (pair, op, direction, dtype, output), ratio in sorted(HEADROOM.items()):
            tr.write_line(f"{pair:<24} {op:<11} {direction:<9} {dtype:<8} {output:<13} "
                          f"{ratio:.2e}")


def verdict(counts: Counter[str]) -> str:
    """One category's verdict for one function: fails / missing / conforms / untested."""
    if counts["failed"]:
        return "fails"
    if counts["missing"]:
        return "missing"
    if counts["passed"]:
        return "conforms"
    if counts["skipped"]:
        return "unsupported"
    return "untested"


def summary_lines(state: _State, name: str) -> list[str]:
    """The contract summary table (and what was unsupported), as printed at the end."""
    op_w = max(14, *(len(op_and_direction(f)[0]) + 1 for f in CONTRACT_FUNCTIONS))
    lines = [f"{'op':<{op_w}} {'direction':<10} {'values':<11} {'arguments':<11} "
             f"{'passed':>7} {'failed':>7} {'missing':>8}"]
    for function in CONTRACT_FUNCTIONS:
        key = op_and_direction(function)
        by_category = state.results.get(key, {})
        counts = [by_category.get(c, Counter()) for c in CATEGORIES]
        total = sum(counts, Counter())
        lines.append(f"{key[0]:<{op_w}} {key[1]:<10} {verdict(counts[0]):<11} "
                     f"{verdict(counts[1]):<11} {total['passed']:>7} {total['failed']:>7} "
                     f"{total['missing']:>8}")
    if state.limits:
        lines.append(f"declared limits ({LIMITS_ATTR}): {_limits_text(state.limits)}")
    if state.unsupported:
        from .verdicts import cause

        grouped: Counter[tuple[str, str]] = Counter()
        for (function, message), count in state.unsupported.items():
            grouped[(function, cause(message))] += count
        lines.append("not supported (NotImplementedError), calls per function and cause:")
        for (function, message), count in sorted(grouped.items()):
            lines.append(f"  {function}: {count} x {message}")
    return lines


def _verdicts(config: pytest.Config) -> dict[str, Any]:
    from . import verdicts

    state = config.stash[_STATE_KEY]
    return verdicts.build(state.results, state.unsupported, state.failures, state.module,
                          impl_name(config.getoption("--impl")), config.getoption("--api"),
                          state.limits, CONTRACT_FUNCTIONS, op_and_direction, verdict)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """--verdicts-json FILE: the run's verdicts (conformance.verdicts), by the controller."""
    config = session.config
    if _cell_errors() and exitstatus == 0 and not hasattr(config, "workerinput"):
        # the notebook does not run top to bottom: its functions are judged, the run fails
        session.exitstatus = exitstatus = pytest.ExitCode.TESTS_FAILED
    path = config.getoption("--verdicts-json", None)
    if not path or hasattr(config, "workerinput") or _STATE_KEY not in config.stash:
        return
    from .verdicts import write

    result = _verdicts(config)
    result["exit_status"] = int(exitstatus)
    result["notebook_cell_errors"] = _cell_errors()
    write(path, result)


def _device_lines() -> list[str]:
    """Each framework backend this run loaded, on its device (``device_report()``)."""
    out = []
    for row in BACKENDS:
        module = sys.modules.get(row.module)
        if module is not None and hasattr(module, "device_report"):
            out.append(module.device_report())
    return out


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    if devices := _device_lines():
        terminalreporter.section("devices")
        for line in devices:
            terminalreporter.write_line(line)
    _headroom_summary(terminalreporter)
    for error in _cell_errors():
        terminalreporter.write_line(f"notebook cell failed (exit status 1 even where every "
                                    f"function conforms): {error}")
    if _cell_errors():
        terminalreporter.section("notebook cells that failed (the other cells still ran)")
        for line in _cell_errors():
            terminalreporter.write_line(line)
    state = config.stash[_STATE_KEY]
    if not state.results and not state.unsupported:
        return
    name = impl_name(config.getoption("--impl"))
    api = config.getoption("--api")
    if api:
        from .verdicts import summary_lines as verdict_lines

        terminalreporter.section(f"contract summary for {name} (--api {api})")
        for line in verdict_lines(_verdicts(config)):
            terminalreporter.write_line(line)
        return
    terminalreporter.section(f"contract summary for {name}")
    for line in summary_lines(state, name):
        terminalreporter.write_line(line)
