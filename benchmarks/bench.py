#!/usr/bin/env python3
"""Time nnref against torch (CPU) in the same process, on the op records' benchmark cases.

    python benchmarks/bench.py [--sizes small,medium,large]
                               [--dtypes float32,float64,float16,bfloat16]
                               [--ops conv,max_pool,...] [--directions fwd,bwd,fwd+bwd]
                               [--repeats R] [--json FILE] [--retries N] [--wait-quiet S]
                               [--impl MODULE]

The rows come from the op records (``conformance.ops.RECORDS``): every ``BenchCase`` of every
record's ``bench``, in each dtype and each direction (forward, backward, forward+backward).
nnref runs through the case's own call (``case.call_args``); torch runs the record's row of the
torch adapter's table (``torch_backend.TABLE``: its forward, and torch.autograd.grad through it),
prepared by ``conformance/backends/torch_bench.py`` (arrays converted to tensors once; this
script never imports torch). Before timing, both sides' outputs are compared with the suite's
error model (``tolerance.comparison_atol`` of the record's bounds, ``comparison.compare_output``).

float16 and bfloat16 rows (``--dtypes``; bfloat16 needs ml_dtypes) run both sides on the case's
float32 arrays rounded to the format (``low_precision.rounded_inputs``), torch on torch.float16 /
torch.bfloat16 tensors. Their agreement is the suite's low-precision error model
(``conformance/low_precision.py``): each side within the bound of the arithmetic it declares for
the function and format (nnref: float32 accumulation; torch: ``torch_backend``'s
``CONFORMANCE_ACCUMULATION``) against nnref in float64 on the stored inputs; a call the torch
adapter does not compute in the format (``Unsupported``) is an ``n/a`` row naming its registry
id. NumPy has no float16 / bfloat16 GEMM, so these rows have no %peak and no targets.

The two sides run interleaved in blocks (nnref, torch, nnref, torch, ...) after a warm-up, with a
pause after each block for the idle threads of its thread pool to stop spinning; every reported
time is the median over the blocks. Peak memory of each nnref call is measured separately with
tracemalloc (NumPy reports its buffers to it). See benchmarks/README.md for the method, the
columns and the targets. Timings and agreement are reported, never asserted: a row nnref or torch
cannot run (a missing function, NotImplementedError, a call that raises) is reported as ``n/a`` or
``error``, and the script exits 0 unless the script itself fails.
"""

from __future__ import annotations

import os

# NumPy's BLAS (OpenBLAS in the wheels) sizes its thread pool once, when NumPy is imported, so the
# thread count has to be fixed here, before the imports below. An explicit setting wins.
THREADS = 2
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))

import argparse  # noqa: E402
import ctypes  # noqa: E402
import functools  # noqa: E402
import gc  # noqa: E402
import glob  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable, Mapping, Sequence  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

# The conformance package (op records, error model, torch side) is not part of the nnref wheel:
# it is imported from this checkout.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from conformance import low_precision as lp  # noqa: E402
from conformance import tolerance  # noqa: E402
from conformance.backends import Unsupported, torch_bench  # noqa: E402
from conformance.comparison import Mismatch, compare_output  # noqa: E402
from conformance.ops import RECORDS, BenchCase, OpRecord  # noqa: E402

# The default dtypes, and the only ones the targets and the GEMM peak apply to.
DTYPES = ("float32", "float64")
# The low-precision storage formats this installation can make (bfloat16 with ml_dtypes), by name.
STORAGE = {d.name: d for d in lp.storage_dtypes()}
# What --dtypes accepts.
DTYPE_CHOICES = DTYPES + tuple(STORAGE)
# Row directions: the short name shown in the table -> torch_bench's direction.
DIRECTIONS = {"fwd": "forward", "bwd": "backward", "fwd+bwd": "forward+backward"}
# The contract calls each row direction makes (and whose outputs it checks), in order.
CALLS = {"fwd": ("forward",), "bwd": ("backward",), "fwd+bwd": ("forward", "backward")}
# Size classes in the order they run; a size a record names that is not here runs after these.
SIZE_ORDER = ("small", "medium", "large")
# The seed of every case's arrays (case.arrays(dtype, SEED)).
SEED = 0

# Adaptive timing. The two sides alternate in blocks: a block runs one side's call back to back for
# at least MIN_BLOCK_S (after one untimed lead-in call when a call is shorter than LEAD_IN_BELOW_S),
# then the script sleeps until that side's idle BLAS/OpenMP threads stop spinning (measured at
# start-up, see measure_spin_down) so they do not steal a core from the other side. A timing group
# (all blocks of one case) aims at GROUP_BUDGET_S with MIN_REPEATS..MAX_REPEATS blocks per side;
# a case whose single call is slow (large float64 conv) runs MIN_REPEATS blocks.
MIN_BLOCK_S = 0.02
LEAD_IN_BELOW_S = 0.05
GROUP_BUDGET_S = 1.5
MIN_REPEATS = 3
MAX_REPEATS = 25
WARMUP_S = 0.1
SPIN_STEP_S = 0.01
SPIN_LIMIT_S = 0.5

# A row timed while other processes used more CPU than this (in cores) is flagged as unreliable.
BUSY_CORES = 0.1
# Such a case is timed again (--retries), after waiting for quiet (probing QUIET_PROBE_S at a time,
# at most --wait-quiet seconds over the whole run); the least disturbed attempt is kept.
QUIET_PROBE_S = 0.25
# A row around which the speed probe (SpeedProbe) ran this many times slower than the fastest probe
# of the run is treated like a busy one: timed again, and marked if that does not help.
SLOW_FACTOR = 1.2

# The targets (README "Targets") were set for the 2-D ops; rows of other ranks have none. They
# name their rows by bench label, as the README does: "conv fwd+bwd", "maxpool ... fwd+bwd".
TARGET_RANK = 2
# The rows of the max-pool / batch-norm time target: labels starting with one of these.
WINDOW_AND_NORM_LABELS = ("maxpool", "batchnorm")

Call = Callable[[], Any]


def _counts_flops(family: str) -> bool:
    return next(r for r in RECORDS if r.name == family).bench_flops is not None


@dataclass
class Job:
    """One benchmark row: a record's bench case in one dtype and direction, and its two calls."""

    record: OpRecord
    bench: BenchCase
    dtype: str
    direction: str  # a key of DIRECTIONS
    x_nbytes: int
    flops: float | None
    # Peak-memory limit in multiples of x.nbytes, if a target applies.
    mem_limit: float | None = None
    # Set by prepare_job; None with `status` "n/a" or "error" and the reason in `reason`.
    nnref_call: Call | None = None
    torch_call: Call | None = None
    # (nnref result, torch result) -> agreement statistics, see agreement()
    check: Callable[[Any, Any], dict[str, Any]] | None = None
    status: str = "ok"
    reason: str = ""
    # Low-precision rows: each side's declared accumulation per contract function, see
    # arithmetics(); empty in float32 / float64.
    accumulation: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def op(self) -> str:
        return f"{self.bench.label} {self.direction}"


@dataclass
class Row:
    """Measured numbers of one case (what the table and the JSON show); None where n/a."""

    op: str  # the bench label and the direction: "conv fwd+bwd"
    label: str  # the bench case's label: "conv", "maxpool3d k3s2p1"
    family: str  # the op record: "conv", "max_pool", "batch_norm", "pad"
    function: str  # the op at its rank: "conv2d", "max_pool3d", "batch_norm0d"
    rank: int
    direction: str  # "fwd", "bwd" or "fwd+bwd"
    size: str
    dtype: str
    case: dict[str, Any]  # the case's parameters (case.to_dict())
    status: str  # "ok"; "n/a" (a side lacks the function or the call); "error" (a call raised)
    reason: str
    nnref_ms: float | None = None
    torch_ms: float | None = None
    ratio: float | None = None
    nnref_gflops: float | None = None
    torch_gflops: float | None = None
    pct_gemm_peak: float | None = None
    nnref_peak_bytes: int | None = None
    x_nbytes: int = 0
    mem_multiple: float | None = None
    mem_limit: float | None = None
    repeats: int = 0
    calls_per_block: dict[str, int] = field(default_factory=dict)
    samples_ms: dict[str, list[float]] = field(default_factory=dict, repr=False)
    # Agreement with torch: the largest |nnref - torch| / tolerance over all outputs (<= 1:
    # within the error model), the largest relative difference, and what was out of tolerance.
    max_tol_ratio: float | None = None
    max_rel_err: float | None = None
    agrees: bool | None = None
    check_failures: list[str] = field(default_factory=list)
    # Low-precision rows only (empty in float32 / float64): each side's declared accumulation per
    # contract function ("float32" / "storage"), and each side's largest |error| / bound against
    # nnref in float64 on the stored inputs (<= 1: within its arithmetic's bound).
    # `unbounded`: each side's fraction of output elements whose bound is infinite (the model
    # allows any value there; lp.judge counts them as headroom 0), the largest over its calls.
    accumulation: dict[str, dict[str, str]] = field(default_factory=dict)
    bound_ratio: dict[str, float] = field(default_factory=dict)
    unbounded: dict[str, float] = field(default_factory=dict)
    # CPU used by other processes while this case was timed (cores), None if unknown.
    other_load: float | None = None
    # Reference workload time around this case (the slower of before and after), and that over
    # the fastest probe of the run (1.0: the machine ran at its best speed).
    probe_ms: float | None = None
    probe_slowdown: float | None = None
    attempts: int = 0


@dataclass
class TargetCheck:
    target: str
    case: str
    value: float
    limit: float
    unit: str
    met: bool


# --------------------------------------------------------------------------------------------
# Environment


def import_impl(name: str) -> ModuleType:
    """Import the implementation; fall back to the checkout's impl/ for an uninstalled nnref."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:
        if name != "nnref":
            raise
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "impl"))
        return importlib.import_module(name)


def _openblas_threads_ctypes() -> dict[str, Any] | None:
    """Ask a bundled OpenBLAS for its thread count directly (no threadpoolctl needed)."""
    libs_dir = Path(np.__file__).resolve().parents[1] / "numpy.libs"
    symbols = (
        "scipy_openblas_get_num_threads64_",
        "openblas_get_num_threads64_",
        "scipy_openblas_get_num_threads",
        "openblas_get_num_threads",
    )
    for path in sorted(glob.glob(str(libs_dir / "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in symbols:
            fn = getattr(lib, symbol, None)
            if fn is not None:
                fn.restype = ctypes.c_int
                return {"source": f"ctypes {Path(path).name}:{symbol}", "num_threads": fn()}
    return None


def blas_info() -> dict[str, Any]:
    """NumPy's BLAS: build configuration and, where it can be found, the live thread count."""
    info: dict[str, Any] = {}
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        info["name"] = blas.get("name")
        info["version"] = blas.get("version")
        info["configuration"] = blas.get("openblas configuration")
    except Exception as exc:  # show_config's layout is not a stable API
        info["config_error"] = repr(exc)
    try:
        from threadpoolctl import threadpool_info  # optional

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        info["threadpools"] = [
            {k: p.get(k) for k in ("internal_api", "num_threads", "filepath", "version")}
            for p in pools
        ]
        numpy_pools = [p for p in pools if "numpy" in str(p.get("filepath", ""))]
        if numpy_pools:
            info["num_threads"] = numpy_pools[0].get("num_threads")
            info["num_threads_source"] = "threadpoolctl"
    except ImportError:
        pass
    if "num_threads" not in info:
        probe = _openblas_threads_ctypes()
        if probe is not None:
            info["num_threads"] = probe["num_threads"]
            info["num_threads_source"] = probe["source"]
        else:
            info["num_threads"] = None
            info["num_threads_source"] = "unknown (install threadpoolctl to see it)"
    return info


def git_state(path: str | None) -> dict[str, Any] | None:
    """Commit and dirty flag of the checkout holding `path` (which code was measured)."""
    if path is None:
        return None
    folder = Path(path).resolve().parent

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    try:
        commit = git("rev-parse", "HEAD")
        if not commit:
            return None
        return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--", "."))}
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(impl: ModuleType) -> dict[str, Any]:
    torch_info = torch_bench.info()
    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "torch": torch_info["torch"],
        "impl": impl.__name__,
        "impl_version": getattr(impl, "__version__", None),
        "impl_file": getattr(impl, "__file__", None),
        "impl_git": git_state(getattr(impl, "__file__", None)),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch_info["torch_threads"],
        "torch_interop_threads": torch_info["torch_interop_threads"],
        "torch_mkldnn": torch_info["torch_mkldnn"],
        "blas": blas_info(),
        "env": {
            k: os.environ.get(k)
            for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
        },
    }


# --------------------------------------------------------------------------------------------
# Timing


def _time_calls(fn: Call, number: int) -> float:
    """Seconds per call, over `number` back-to-back calls (results dropped as they come)."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def _warm_up(fn: Call) -> float:
    """Call fn for WARMUP_S (at least once, at most 50 times); return the fastest call's time.

    The agreement check has already called it once, so the first-call costs are paid.
    """
    deadline = time.perf_counter() + WARMUP_S
    calls = 0
    best = math.inf
    while calls == 0 or (time.perf_counter() < deadline and calls < 50):
        best = min(best, _time_calls(fn, 1))
        calls += 1
    return best


def measure_spin_down(fn: Call) -> float:
    """Seconds for which the process keeps burning CPU after fn returns (idle pool threads spin).

    OpenBLAS workers spin for about 2**28 cycles (~0.1 s) after a call, torch's OpenMP threads for
    a few ms; on a machine with as many cores as threads such a spinner halves the other library's
    speed. Measured by sleeping in SPIN_STEP_S steps until a step uses < 1/4 core of CPU time.
    """
    fn()
    fn()
    start = time.perf_counter()
    while time.perf_counter() - start < SPIN_LIMIT_S:
        cpu = time.process_time()
        time.sleep(SPIN_STEP_S)
        if time.process_time() - cpu < 0.25 * SPIN_STEP_S:
            break
    return time.perf_counter() - start


@dataclass
class Pauses:
    """Sleep after a block of each side, so that its spinning threads are parked."""

    nnref_s: float
    torch_s: float


def measure_pauses() -> Pauses:
    """Spin-down of NumPy's BLAS (a matmul) and of torch's thread pool (a conv), plus a margin."""
    a = np.ones((512, 512))
    torch_call = torch_bench.spin_probe()

    def numpy_call() -> None:
        a @ a

    spin_np = max(measure_spin_down(numpy_call) for _ in range(2))
    spin_torch = max(measure_spin_down(torch_call) for _ in range(2))
    return Pauses(nnref_s=spin_np + SPIN_STEP_S, torch_s=spin_torch + SPIN_STEP_S)


def time_pair(
    a: Call, b: Call, repeats: int | None, pauses: Pauses
) -> tuple[list[float], list[float], int, int]:
    """Interleaved blocks a, b, a, b, ...: per-call seconds of each block, and calls per block."""
    t_a = _warm_up(a)
    time.sleep(pauses.nnref_s)
    t_b = _warm_up(b)
    time.sleep(pauses.torch_s)
    n_a = max(1, math.ceil(MIN_BLOCK_S / t_a))
    n_b = max(1, math.ceil(MIN_BLOCK_S / t_b))
    lead_a, lead_b = t_a < LEAD_IN_BELOW_S, t_b < LEAD_IN_BELOW_S
    if repeats is None:
        pair = (n_a + lead_a) * t_a + (n_b + lead_b) * t_b + pauses.nnref_s + pauses.torch_s
        repeats = min(MAX_REPEATS, max(MIN_REPEATS, int(GROUP_BUDGET_S / pair)))
    samples_a: list[float] = []
    samples_b: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            if lead_a:
                a()
            samples_a.append(_time_calls(a, n_a))
            time.sleep(pauses.nnref_s)
            if lead_b:
                b()
            samples_b.append(_time_calls(b, n_b))
            time.sleep(pauses.torch_s)
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples_a, samples_b, n_a, n_b


class OtherLoad:
    """CPU used by other processes while a block of code runs, in cores (Linux /proc/stat)."""

    def __init__(self) -> None:
        self.cores: float | None = None

    @staticmethod
    def _machine_busy_s() -> float | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        busy = sum(fields) - fields[3] - fields[4]  # minus idle and iowait
        return busy / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> OtherLoad:
        self._busy = self._machine_busy_s()
        times = os.times()
        self._own = times.user + times.system
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        busy = self._machine_busy_s()
        times = os.times()
        wall = time.perf_counter() - self._wall
        if busy is None or self._busy is None or wall <= 0:
            return
        own = times.user + times.system - self._own
        self.cores = max(0.0, (busy - self._busy - own) / wall)


class QuietWaiter:
    """Before a case, wait (within a budget for the whole run) until other processes are idle."""

    def __init__(self, budget_s: float) -> None:
        self.left_s = budget_s
        self.waited_s = 0.0

    def wait(self) -> None:
        while self.left_s > 0:
            with OtherLoad() as load:
                time.sleep(QUIET_PROBE_S)
            self.left_s -= QUIET_PROBE_S
            if load.cores is None or load.cores <= BUSY_CORES:
                return
            self.waited_s += QUIET_PROBE_S


class SpeedProbe:
    """A fixed reference workload, timed at start-up and before and after every case.

    A 2-thread BLAS GEMM plus a single-threaded strided NumPy copy (the two halves of an im2col
    conv), best of 5. A virtual machine can run 1.5-3x slower for a while with nothing to see in
    /proc/stat (host contention, throttling), and that may include the start-up, so the reference
    is the fastest probe of the whole run: a case whose probe took more than SLOW_FACTOR times
    that is timed again (--retries, judged against the fastest probe so far) or flagged.
    """

    def __init__(self) -> None:
        rng = np.random.default_rng(1)
        self.a = rng.standard_normal((384, 384))
        self.out = np.empty_like(self.a)
        self.src = rng.standard_normal((64, 64, 64))
        self.dst = np.empty_like(self.src)
        self.best_s = math.inf
        self.measure()

    def _time(self) -> float:
        start = time.perf_counter()
        np.matmul(self.a, self.a, out=self.out)
        np.copyto(self.dst, self.src.transpose(2, 0, 1))
        return time.perf_counter() - start

    def measure(self) -> float:
        """Probe time now (seconds, best of 5); also updates the fastest seen."""
        now = min(self._time() for _ in range(5))
        self.best_s = min(self.best_s, now)
        return now


def peak_memory(fn: Call) -> int:
    """Peak bytes allocated during one call (the result included), via tracemalloc."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
        del result
    finally:
        tracemalloc.stop()
    return peak - base


def gemm_peak(dtype: str, pauses: Pauses, n: int = 2048, tries: int = 5) -> dict[str, Any]:
    """Best-of-`tries` GFLOP/s of an n x n matmul, for NumPy (the peak) and torch (context)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype=dtype)
    torch_mm = torch_bench.matmul(a, b)

    def numpy_mm() -> None:
        np.matmul(a, b, out=out)

    with OtherLoad() as load:
        best_np = min(_time_calls(numpy_mm, 1) for _ in range(tries + 1))
        time.sleep(pauses.nnref_s)
        best_torch = min(_time_calls(torch_mm, 1) for _ in range(tries + 1))
        time.sleep(pauses.torch_s)
    flops = 2.0 * n**3
    return {
        "n": n,
        "numpy_gflops": flops / best_np / 1e9,
        "numpy_best_ms": best_np * 1e3,
        "torch_gflops": flops / best_torch / 1e9,
        "torch_best_ms": best_torch * 1e3,
        "other_load": load.cores,
    }


def best_peak(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The fastest of several GEMM-peak measurements (a peak is a best case), with all of them."""
    return {
        "n": runs[0]["n"],
        "numpy_gflops": max(r["numpy_gflops"] for r in runs),
        "torch_gflops": max(r["torch_gflops"] for r in runs),
        "runs": list(runs),
    }


# --------------------------------------------------------------------------------------------
# Cases: the records' bench cases, each in every dtype and direction


class NotAvailable(Exception):
    """A side cannot run a row: nnref lacks the function, or the torch row cannot express it."""


def bench_cases(
    sizes: Sequence[str], ops: Sequence[str] | None
) -> list[tuple[OpRecord, BenchCase]]:
    """The records' bench cases of the given sizes (and ops), size by size, record by record."""
    chosen = []
    for size in sizes:
        for record in RECORDS:
            for bench in record.bench:
                names = {record.name, bench.label, bench.case.label}
                if bench.size == size and (ops is None or names & set(ops)):
                    chosen.append((record, bench))
    return chosen


def size_names() -> list[str]:
    """Every size class the records' bench cases use, the usual ones first."""
    used = {b.size for r in RECORDS for b in r.bench}
    return [s for s in SIZE_ORDER if s in used] + sorted(used - set(SIZE_ORDER))


def op_names() -> list[str]:
    """What --ops accepts: record names, bench labels and the ops at their rank (conv3d)."""
    names = [r.name for r in RECORDS]
    names += [b.label for r in RECORDS for b in r.bench]
    names += [b.case.label for r in RECORDS for b in r.bench]
    return list(dict.fromkeys(names))


def nominal_flops(record: OpRecord, case: Any, direction: str) -> float | None:
    """The record's GEMM operation count (OpRecord.bench_flops), None for other ops."""
    return None if record.bench_flops is None else record.bench_flops(case, direction)


def memory_limit(record: OpRecord, bench: BenchCase, direction: str) -> float | None:
    """The record's peak-memory target (2-D forward and backward), None for other ops."""
    case = bench.case
    if record.bench_peak_memory is not None and case.rank == TARGET_RANK \
            and direction in ("fwd", "bwd"):
        return record.bench_peak_memory(case)
    return None


def bound_call(impl: ModuleType, case: Any, arrays: Mapping[str, np.ndarray],
               direction: str) -> Call:
    """impl's contract function for one direction with the case's arguments bound once."""
    name = case.op if direction == "forward" else case.backward_op
    fn = getattr(impl, name, None)
    if fn is None:
        raise NotAvailable(f"{impl.__name__} has no {name}")
    args = case.call_args(direction, arrays)
    positional = [args.pop(k) for k in case.positional[direction]]
    return functools.partial(fn, *positional, **args)


def named(names: Sequence[str], out: Any) -> dict[str, Any]:
    """A contract call's result by output name (case.outputs(direction))."""
    if len(names) == 1:
        return {names[0]: out}
    if not isinstance(out, tuple | list) or len(out) != len(names):
        raise TypeError(f"returned {type(out).__name__}, expected a tuple {tuple(names)}")
    return dict(zip(names, out, strict=True))


def agreement(case: Any, arrays: Mapping[str, np.ndarray], dtype_name: str, direction: str,
              ours: Mapping[str, Any], theirs: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """nnref's outputs against torch's, within the error model.

    Both compute in the case's dtype, so each output may differ by both implementations' bounds:
    ``tolerance.comparison_atol(bound, bound)``, as ``conformance diff`` compares two backends.
    """
    dtype = np.dtype(dtype_name)
    a64 = {k: v.astype(np.float64) for k, v in arrays.items()}
    bounds: dict[str, Any] = {}
    with np.errstate(all="ignore"):
        if direction in ("fwd", "fwd+bwd"):
            bounds.update(tolerance.forward_bounds(case, a64, dtype))
        if direction in ("bwd", "fwd+bwd"):
            bounds.update(tolerance.backward_bounds(case, a64, dtype))
    ratio, rel, failures = 0.0, 0.0, []
    for name, value in theirs.items():
        if ours.get(name) is None:
            failures.append(f"{name}: not returned by nnref")
            continue
        bound = bounds.get(name, 0.0)
        with np.errstate(all="ignore"):
            s = compare_output(name, ours[name], value,
                               tolerance.comparison_atol(bound, bound), dtype.name)
        ratio, rel = max(ratio, s["max_ratio"]), max(rel, s["max_rel"])
        failures.extend(s["failures"])
    return {"max_tol_ratio": ratio, "max_rel_err": rel, "agrees": not failures,
            "check_failures": failures}


class Reference:
    """The expected values of a low-precision row: the reference implementation (nnref) in
    float64 on the case's inputs exactly as the format stores them (``a64``), so rounding the
    inputs is not counted as an error of either side. Computed once per case and format, on
    first use, and shared by its rows' directions."""

    def __init__(self, module: ModuleType, case: Any, a64: Mapping[str, np.ndarray]) -> None:
        self.module = module
        self.case = case
        self.a64 = a64
        self._outputs: dict[str, dict[str, Any]] = {}
        self._allowed: dict[tuple[str, lp.Arithmetic], dict[str, np.ndarray]] = {}

    def outputs(self, call: str) -> dict[str, Any]:
        """The reference's outputs of one contract call ("forward" / "backward"), by name."""
        if call not in self._outputs:
            with np.errstate(all="ignore"):
                self._outputs[call] = self.case.call(self.module, call, dict(self.a64))
        return self._outputs[call]

    def allowed(self, call: str, arithmetic: lp.Arithmetic) -> dict[str, np.ndarray]:
        """``lp.allowed`` for one call and arithmetic (shared by the sides that declare it)."""
        key = (call, arithmetic)
        if key not in self._allowed:
            with np.errstate(all="ignore"):
                self._allowed[key] = lp.allowed(self.case, self.a64, call, arithmetic,
                                                self.outputs(call))
        return self._allowed[key]


def case_inputs(case: Any, dtype: str, reference: ModuleType | None
                ) -> tuple[Mapping[str, np.ndarray], Reference | None]:
    """The arrays both sides run on, and for a low-precision dtype the expected values.

    float32 / float64: ``case.arrays(dtype, SEED)``. float16 / bfloat16: the case's float32
    arrays rounded to the format (``lp.rounded_inputs``), as the suite's low-precision tests
    make them, and the :class:`Reference` on the same values in float64.
    """
    if dtype in DTYPES:
        return case.arrays(np.dtype(dtype), SEED), None
    assert reference is not None
    low, a64 = lp.rounded_inputs(case.arrays(np.float32, SEED), STORAGE[dtype])
    return low, Reference(reference, case, a64)


def arithmetics(impl: ModuleType, case: Any, dtype: str, direction: str
                ) -> dict[str, dict[str, str]]:
    """Each side's declared accumulation per contract function of the row, in a low-precision
    dtype (empty otherwise): the implementation's own declaration (``lp.declared_accumulation``;
    one that declares nothing is held to the default, float32 accumulation), torch's from the
    adapter (``torch_bench.accumulation``, float32 where it declares nothing)."""
    if dtype in DTYPES:
        return {}
    storage = STORAGE[dtype]
    names = [case.op if call == "forward" else case.backward_op for call in CALLS[direction]]
    return {
        "nnref": {f: lp.declared_accumulation(impl, f, storage) or "float32" for f in names},
        "torch": {f: torch_bench.accumulation(f, storage) or "float32" for f in names},
    }


def _ratio_to_bound(value: Any, want: Any, limit: Any) -> float:
    """The largest |value - want| / limit over want's finite elements (NaN, a wrong shape:
    inf): the size of a breach :func:`lp.judge` reported."""
    got64, want64 = np.asarray(value, np.float64), np.asarray(want, np.float64)
    if got64.shape != want64.shape:
        return math.inf
    with np.errstate(all="ignore"):
        err = np.abs(got64 - want64)
        ratio = np.where(np.isfinite(want64), err / np.broadcast_to(limit, err.shape), 0.0)
    return float(np.nan_to_num(ratio, nan=math.inf).max(initial=0.0))


def _unbounded(limits: Mapping[str, np.ndarray], expected: Mapping[str, Any]) -> float:
    """The fraction of the checked elements (finite expected values) whose bound is infinite:
    the error model allows anything there (a norm's storage-accumulation bound once its
    variance bound exceeds the variance), so ``lp.judge`` counts them as headroom 0."""
    total = unbounded = 0
    for name, limit in limits.items():
        finite = np.isfinite(np.asarray(expected[name], np.float64))
        total += int(finite.sum())
        unbounded += int((finite & np.isinf(np.broadcast_to(limit, finite.shape))).sum())
    return unbounded / total if total else 0.0


def _side_within_bound(case: Any, storage: np.dtype, call: str, got: Mapping[str, Any],
                       reference: Reference, accumulation: str, side: str
                       ) -> tuple[float, float, list[str]]:
    """One side's outputs of one call against the reference, by ``lp.judge``: the largest
    |error| / bound (its headroom), the fraction of elements without a finite bound
    (:func:`_unbounded`) and what broke a bound (side-prefixed messages)."""
    expected = reference.outputs(call)
    missing = [n for n in expected if got.get(n) is None]
    if missing:
        return math.inf, 0.0, [f"{side}: {', '.join(missing)} not returned"]
    arithmetic = lp.Arithmetic(storage, accumulation)
    limits = reference.allowed(call, arithmetic)
    unbounded = _unbounded(limits, expected)
    mine = {n: got[n] for n in expected}
    where = (f"{case.label} {call}, the float32 inputs of seed {SEED} stored in "
             f"{storage.name}")
    with np.errstate(all="ignore"):
        try:
            headroom = lp.judge(case, mine, expected, reference.a64, call, arithmetic, where)
            return max(headroom.values(), default=0.0), unbounded, []
        except Mismatch as exc:
            worst = max((math.inf if n == "indices" and not np.array_equal(mine[n], want)
                         else _ratio_to_bound(mine[n], want, limits[n]) if n in limits
                         else 0.0) for n, want in expected.items())
            return worst, unbounded, [f"{side}: {exc}"]


def _max_rel_diff(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> float:
    """The largest |nnref - torch| / max(|nnref|, |torch|) over the floating outputs (context for
    a low-precision row; its agreement is judged against the reference)."""
    worst = 0.0
    for name, value in theirs.items():
        a, b = np.asarray(ours.get(name)), np.asarray(value)
        if name == "indices" or a.shape != b.shape or a.size == 0:
            continue
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        with np.errstate(all="ignore"):
            err = np.abs(a64 - b64)
            rel = np.where(err == 0, 0.0, err / np.maximum(np.abs(a64), np.abs(b64)))
        worst = max(worst, float(np.nan_to_num(rel, nan=0.0).max()))
    return worst


def low_precision_agreement(case: Any, dtype_name: str, direction: str,
                            ours: Mapping[str, Any], theirs: Mapping[str, Any],
                            reference: Reference, accumulation: Mapping[str, Mapping[str, str]]
                            ) -> dict[str, Any]:
    """Both sides' outputs in float16 / bfloat16, each within the bound of its own declared
    arithmetic (``lp.Arithmetic``: the storage format and the accumulation ``accumulation``
    names for each contract function) against nnref in float64 on the stored inputs.

    The two sides are not compared with each other: each may be anywhere within its own bound.
    ``max_tol_ratio`` is the larger side's |error| / bound (<= 1: both within);
    ``bound_ratio`` has both, ``unbounded`` each side's largest fraction of elements without a
    finite bound.
    """
    storage = STORAGE[dtype_name]
    ratios: dict[str, float] = {}
    unbounded: dict[str, float] = {}
    failures: list[str] = []
    for side, got in (("nnref", ours), ("torch", theirs)):
        ratios[side] = unbounded[side] = 0.0
        for call in CALLS[direction]:
            function = case.op if call == "forward" else case.backward_op
            ratio, free, broken = _side_within_bound(case, storage, call, got, reference,
                                                     accumulation[side][function], side)
            ratios[side] = max(ratios[side], ratio)
            unbounded[side] = max(unbounded[side], free)
            failures.extend(broken)
    return {"max_tol_ratio": max(ratios.values()), "max_rel_err": _max_rel_diff(ours, theirs),
            "agrees": not failures, "check_failures": failures, "bound_ratio": ratios,
            "unbounded": unbounded}


def make_job(impl: ModuleType, record: OpRecord, bench: BenchCase, dtype: str, direction: str,
             arrays: Mapping[str, np.ndarray], reference: Reference | None = None) -> Job:
    """The row's two calls (or why it is n/a): nnref's bound contract calls, torch_bench's.

    ``reference``: the expected values of a low-precision row (:func:`case_inputs`), whose
    agreement is then :func:`low_precision_agreement` instead of :func:`agreement`.
    """
    case = bench.case
    job = Job(record, bench, dtype, direction, x_nbytes=int(arrays["x"].nbytes),
              flops=nominal_flops(record, case, direction),
              mem_limit=memory_limit(record, bench, direction),
              accumulation=arithmetics(impl, case, dtype, direction))
    fwd_names, bwd_names = tuple(case.outputs("forward")), tuple(case.outputs("backward"))
    try:
        if direction == "fwd":
            job.nnref_call = bound_call(impl, case, arrays, "forward")

            def name_ours(out: Any) -> dict[str, Any]:
                return named(fwd_names, out)
        elif direction == "bwd":
            job.nnref_call = bound_call(impl, case, arrays, "backward")

            def name_ours(out: Any) -> dict[str, Any]:
                return named(bwd_names, out)
        else:
            fwd = bound_call(impl, case, arrays, "forward")
            bwd = bound_call(impl, case, arrays, "backward")

            def fwd_bwd() -> Any:
                return fwd(), bwd()

            job.nnref_call = fwd_bwd

            def name_ours(out: Any) -> dict[str, Any]:
                return {**named(fwd_names, out[0]), **named(bwd_names, out[1])}
    except NotAvailable as exc:
        job.status, job.reason = "n/a", str(exc)
        return job
    try:
        prepared = torch_bench.prepare(case, arrays, DIRECTIONS[direction])
    except NotImplementedError as exc:
        job.status, job.reason = "n/a", f"torch: {exc}"
        return job
    except Unsupported as exc:  # a low-precision format the adapter does not compute the call in
        job.status, job.reason = "n/a", f"torch: {describe_exception(exc)}"
        return job
    job.torch_call = prepared.run

    def check(ours: Any, theirs: Any) -> dict[str, Any]:
        try:
            mine = name_ours(ours)
        except TypeError as exc:
            return {"max_tol_ratio": math.inf, "max_rel_err": math.inf, "agrees": False,
                    "check_failures": [f"nnref {exc}"]}
        if reference is not None:
            return low_precision_agreement(case, dtype, direction, mine,
                                           prepared.outputs(theirs), reference, job.accumulation)
        return agreement(case, arrays, dtype, direction, mine, prepared.outputs(theirs))

    job.check = check
    return job


def describe_exception(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 160 else text[:157] + "..."


def first_calls(job: Job) -> dict[str, Any] | None:
    """Run both sides once and compare; None (and job.status set) when a side cannot run."""
    assert job.nnref_call is not None and job.torch_call is not None and job.check is not None
    try:
        ours = job.nnref_call()
    except (NotImplementedError, Unsupported) as exc:
        job.status, job.reason = "n/a", f"nnref: {describe_exception(exc)}"
        return None
    except Exception as exc:
        job.status, job.reason = "error", f"nnref raised {describe_exception(exc)}"
        return None
    try:
        theirs = job.torch_call()
    except Exception as exc:  # a configuration torch refuses: nothing to compare with
        job.status, job.reason = "n/a", f"torch raised {describe_exception(exc)}"
        return None
    return job.check(ours, theirs)


def unavailable_row(job: Job) -> Row:
    case = job.bench.case
    return Row(op=job.op, label=job.bench.label, family=job.record.name, function=case.label,
               rank=case.rank, direction=job.direction, size=job.bench.size, dtype=job.dtype,
               case=case.to_dict(), status=job.status, reason=job.reason,
               x_nbytes=job.x_nbytes, mem_limit=job.mem_limit,
               accumulation=job.accumulation if job.status == "ok" else {})


def run_case(
    job: Job,
    repeats: int | None,
    pauses: Pauses,
    peak_gflops: float | None,
    retries: int,
    waiter: QuietWaiter,
    probe: SpeedProbe,
) -> Row:
    if job.status != "ok":
        return unavailable_row(job)
    agreed = first_calls(job)
    if agreed is None:
        return unavailable_row(job)
    assert job.nnref_call is not None and job.torch_call is not None
    # (badness, other load, probe seconds, timings) of the least disturbed attempt
    best: tuple[float, float, float, tuple[list[float], list[float], int, int]] | None = None
    attempts = 0
    while attempts <= retries:
        attempts += 1
        waiter.wait()
        before = probe.measure()
        with OtherLoad() as load:
            timed = time_pair(job.nnref_call, job.torch_call, repeats, pauses)
        probe_s = max(before, probe.measure())
        slowdown = probe_s / probe.best_s
        other = math.inf if load.cores is None else load.cores
        # Unknown load (no /proc/stat) cannot be improved by retrying: judge by the probe alone.
        badness = max(0.0 if load.cores is None else other / BUSY_CORES, slowdown / SLOW_FACTOR)
        if best is None or badness < best[0]:
            best = (badness, other, probe_s, timed)
        if badness <= 1.0:
            break
    assert best is not None
    _, other_load, probe_s, (samples_n, samples_t, calls_n, calls_t) = best
    nnref_s = statistics.median(samples_n)
    torch_s = statistics.median(samples_t)
    peak_bytes = peak_memory(job.nnref_call)
    nnref_gflops = job.flops / nnref_s / 1e9 if job.flops else None
    torch_gflops = job.flops / torch_s / 1e9 if job.flops else None
    row = unavailable_row(job)
    row.nnref_ms = nnref_s * 1e3
    row.torch_ms = torch_s * 1e3
    row.ratio = nnref_s / torch_s
    row.nnref_gflops = nnref_gflops
    row.torch_gflops = torch_gflops
    row.pct_gemm_peak = (100.0 * nnref_gflops / peak_gflops
                         if nnref_gflops and peak_gflops else None)
    row.nnref_peak_bytes = peak_bytes
    row.mem_multiple = peak_bytes / job.x_nbytes
    row.repeats = len(samples_n)
    row.calls_per_block = {"nnref": calls_n, "torch": calls_t}
    row.samples_ms = {"nnref": [t * 1e3 for t in samples_n],
                      "torch": [t * 1e3 for t in samples_t]}
    row.max_tol_ratio = agreed["max_tol_ratio"]
    row.max_rel_err = agreed["max_rel_err"]
    row.agrees = agreed["agrees"]
    row.check_failures = agreed["check_failures"]
    row.bound_ratio = agreed.get("bound_ratio", {})
    row.unbounded = agreed.get("unbounded", {})
    row.other_load = None if math.isinf(other_load) else other_load
    row.probe_ms = probe_s * 1e3
    row.probe_slowdown = probe_s / probe.best_s  # final value set once the run's best is known
    row.attempts = attempts
    return row


# --------------------------------------------------------------------------------------------
# Targets and reporting


def check_targets(rows: Sequence[Row]) -> list[TargetCheck]:
    """The README's targets, on the float32 / float64 rows of rank TARGET_RANK (the 2-D ops) that
    ran, selected by bench label (the targets were set for those dtypes: float16 / bfloat16 rows
    have none)."""
    checks: list[TargetCheck] = []

    def add(target: str, row: Row, value: float, limit: float, unit: str, at_most: bool) -> None:
        met = value <= limit if at_most else value >= limit
        case = f"{row.op} {row.size} {row.dtype}"
        checks.append(TargetCheck(target, case, value, limit, unit, met))

    for row in rows:
        if (row.status != "ok" or row.rank != TARGET_RANK or row.ratio is None
                or row.dtype not in DTYPES):
            continue
        # the matrix op's time and GEMM-peak targets: the rows of the record that counts flops
        conv = _counts_flops(row.family)
        if conv and row.direction == "fwd+bwd" and row.size in ("medium", "large"):
            limit = 1.3 if row.dtype == "float32" else 1.0
            add("conv fwd+bwd time / torch", row, row.ratio, limit, "x", at_most=True)
        if conv and row.direction == "fwd" and row.size == "large" and row.pct_gemm_peak:
            add(
                "large conv fwd, % of NumPy GEMM peak",
                row,
                row.pct_gemm_peak,
                60.0,
                "%",
                at_most=False,
            )
        group = next((g for g in WINDOW_AND_NORM_LABELS if row.label.startswith(g)), None)
        if group is not None and row.direction == "fwd+bwd":
            add(f"{group} fwd+bwd time / torch", row, row.ratio, 1.5, "x", at_most=True)
        if row.size == "small":
            add("small shapes: time per call / torch", row, row.ratio, 1.0, "x", at_most=True)
        if row.mem_limit is not None and row.mem_multiple is not None:
            add(
                "conv peak memory / x bytes",
                row,
                row.mem_multiple,
                row.mem_limit,
                "x",
                at_most=True,
            )
    return checks


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def low_precision(r: Row) -> bool:
    """Whether the row is in a low-precision format (float16 / bfloat16)."""
    return r.dtype not in DTYPES


def peak_text(r: Row, spec: str) -> str:
    """The %peak cell: the percentage, "-" for an op without a flop count, "n/a" for a
    low-precision row (NumPy has no GEMM in the format, so no peak to compare with)."""
    if low_precision(r) and r.nnref_gflops is not None:
        return "n/a"
    return _fmt(r.pct_gemm_peak, spec)


def _accumulation_text(declared: Mapping[str, str]) -> str:
    """A side's declared accumulation, only where it is not the default (float32)."""
    storage = [f for f, a in declared.items() if a != "float32"]
    if not storage:
        return ""
    where = "" if len(storage) == len(declared) else f" in {', '.join(storage)}"
    return f" (storage acc.{where})"


def _ratio_text(value: float) -> str:
    """|error| / bound, short, never rounded across 1 (the limit): below it rounded down, above
    it up."""
    if value == 0 or math.isinf(value):
        return f"{value:g}"
    if value < 0.01:
        return f"{value:.0e}"
    if value < 1:
        return f"{math.floor(value * 100) / 100:.2f}"
    if value < 10:
        return f"{math.ceil(value * 100) / 100:.2f}"
    return f"{value:.3g}"


def bound_text(r: Row) -> str:
    """A low-precision row's agreement: each side's |error| / bound against nnref in float64,
    with a side's accumulation where it declares storage accumulation, and the share of
    elements whose bound is infinite where there are any."""
    parts = []
    for side in ("nnref", "torch"):
        if side not in r.bound_ratio:
            continue
        text = f"{side} {_ratio_text(r.bound_ratio[side])}"
        text += _accumulation_text(r.accumulation.get(side, {}))
        free = r.unbounded.get(side, 0.0)
        if free > 0:
            text += f" [bound infinite at {100 * free:.3g}% of elements]"
        parts.append(text)
    return "error/bound " + ", ".join(parts)


TABLE_HEADER = (
    f"{'case':<25} {'op':<17} {'size':<7} {'dtype':<8} {'nnref ms':>10} {'torch ms':>10} "
    f"{'ratio':>6} {'GFLOP/s':>8} {'torch GF/s':>10} {'%peak':>6} {'mem/x':>6} {'reps':>5} "
    f"{'other':>5} {'probe':>5}"
)


def disturbed(r: Row) -> bool:
    if r.status != "ok":
        return False
    return (r.other_load is None or r.other_load > BUSY_CORES
            or (r.probe_slowdown or 0.0) > SLOW_FACTOR)


def target_notes(r: Row, checks: Sequence[TargetCheck]) -> str:
    """The row's target checks as in the README's status table: met (0.76x vs 1.5); ..."""
    case = f"{r.op} {r.size} {r.dtype}"
    return "; ".join(
        f"{'met' if c.met else 'MISSED'} ({c.value:.2f}{c.unit} vs {c.limit:g})"
        for c in checks if c.case == case
    )


def format_row(r: Row, checks: Sequence[TargetCheck] | None = None) -> str:
    lead = f"{r.op:<25} {r.function:<17} {r.size:<7} {r.dtype:<8}"
    if r.status != "ok":
        return f"{lead} {r.status:>10}: {r.reason}"
    notes = []
    if disturbed(r):
        notes.append("*")
    if low_precision(r):
        notes.append(bound_text(r))
        if not r.agrees:
            notes.append(f"! beyond the low-precision error model: {'; '.join(r.check_failures)}")
    elif not r.agrees:
        notes.append(f"! differs from torch beyond the error model (|diff| / tolerance "
                     f"{r.max_tol_ratio:.3g}): {'; '.join(r.check_failures)}")
    if checks:
        targets = target_notes(r, checks)
        if targets:
            notes.append(f"[{targets}]")
    return (
        f"{lead} {r.nnref_ms:>10.3f} {r.torch_ms:>10.3f} "
        f"{r.ratio:>6.2f} {_fmt(r.nnref_gflops, '8.1f'):>8} "
        f"{_fmt(r.torch_gflops, '10.1f'):>10} {peak_text(r, '6.1f'):>6} "
        f"{r.mem_multiple:>6.2f} {r.repeats:>5} {_fmt(r.other_load, '5.2f'):>5} "
        f"{_fmt(r.probe_slowdown, '5.2f'):>5} " + " ".join(notes)
    ).rstrip()


def print_table(rows: Sequence[Row], checks: Sequence[TargetCheck]) -> None:
    print(TABLE_HEADER)
    print("-" * len(TABLE_HEADER))
    for r in rows:
        print(format_row(r, checks))
    if any(disturbed(r) for r in rows):
        print(
            f"* other processes used more than {BUSY_CORES} cores on average while this row was "
            f"timed (or it could not be told), or the machine ran more than {SLOW_FACTOR}x slower "
            "than at start-up (probe): its times are unreliable"
        )
    if any(low_precision(r) for r in rows):
        print("float16 / bfloat16: both sides on the float32 case rounded to the format; "
              "error/bound: each side's largest |error| / the bound of its declared arithmetic "
              "(float32 accumulation unless 'storage acc.') against nnref in float64 on the stored "
              "inputs (<= 1: within); %peak n/a: NumPy has no GEMM in these formats; no targets")
    if any(r.status != "ok" for r in rows):
        print("n/a: nnref (or --impl) lacks the function or raises NotImplementedError, or the "
              "torch adapter's row cannot express the case or does not compute it in the format "
              "(Unsupported [registry id]); error: the nnref call raised")


def print_targets(checks: Sequence[TargetCheck]) -> None:
    if not checks:  # e.g. float16 / bfloat16 rows only: the targets are float32 / float64's
        print("\nTargets: none apply to the rows run (they are set for float32 and float64).")
        return
    print("\nTargets")
    header = f"{'target':<38} {'case':<38} {'value':>8} {'limit':>8}  met"
    print(header)
    print("-" * len(header))
    for c in checks:
        sign = "<=" if c.unit == "x" else ">="
        print(
            f"{c.target:<38} {c.case:<38} {c.value:>7.2f}{c.unit} {sign}{c.limit:>5.1f}{c.unit}  "
            f"{'yes' if c.met else 'NO'}"
        )
    met = sum(c.met for c in checks)
    print(f"\n{met} of {len(checks)} target checks met.")


def markdown_table(rows: Sequence[Row], checks: Sequence[TargetCheck]) -> str:
    """The README's status table: one line per row (`*`: disturbed); a low-precision row's
    last cell is its agreement (:func:`bound_text`; it has no targets)."""
    lines = ["| case | op | nnref ms | torch ms | ratio | % GEMM peak | mem/x | targets |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        name = f"{r.op} {r.size} {r.dtype}{' *' if disturbed(r) else ''}"
        if r.status != "ok":
            lines.append(f"| {name} | {r.function} | {r.status} | | | | | {r.reason} |")
            continue
        if low_precision(r):
            differs = "" if r.agrees else " (beyond the error model)"
            last = bound_text(r)
        else:
            differs = "" if r.agrees else " (differs from torch)"
            last = target_notes(r, checks)
        lines.append(
            f"| {name}{differs} | {r.function} | {r.nnref_ms:.3f} | {r.torch_ms:.3f} | "
            f"{r.ratio:.2f} | {peak_text(r, '.1f')} | {r.mem_multiple:.2f} | {last} |"
        )
    return "\n".join(lines) + "\n"


def parse_list(text: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in items if item not in allowed]
    if unknown or not items:
        raise argparse.ArgumentTypeError(
            f"{what} must be a comma-separated subset of {','.join(allowed)}, got {text!r}"
        )
    return items


def main(argv: Sequence[str] | None = None) -> int:
    sizes, ops = size_names(), op_names()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(sizes),
        type=lambda t: parse_list(t, sizes, "--sizes"),
        help=f"comma-separated subset of {','.join(sizes)} (BenchCase.size; default: all)",
    )
    parser.add_argument(
        "--dtypes",
        default=",".join(DTYPES),
        type=lambda t: parse_list(t, DTYPE_CHOICES, "--dtypes"),
        help=f"comma-separated subset of {','.join(DTYPE_CHOICES)} (default: "
        f"{','.join(DTYPES)}; bfloat16 needs ml_dtypes)",
    )
    parser.add_argument(
        "--ops",
        default=None,
        type=lambda t: parse_list(t, ops, "--ops"),
        help="comma-separated op records (" + ",".join(r.name for r in RECORDS) + "), bench "
        "labels or ops at a rank (conv3d, ...) (default: every record's bench cases)",
    )
    parser.add_argument(
        "--directions",
        default=",".join(DIRECTIONS),
        type=lambda t: parse_list(t, tuple(DIRECTIONS), "--directions"),
        help=f"comma-separated subset of {','.join(DIRECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed blocks per side and case (default: adaptive, ~1.5 s per case, 3 to 25)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write all numbers here")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="write the README's status table (Markdown) here")
    parser.add_argument(
        "--impl", default="nnref", help="module to benchmark against torch (default: nnref)"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=1,
        help="time a disturbed case (other processes busy, machine slow) again (default: 1)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="seconds, over the whole run, to wait for other processes to go idle (default: 60)",
    )
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.retries < 0 or args.wait_quiet < 0:
        parser.error("--retries and --wait-quiet must be >= 0")
    chosen = bench_cases(args.sizes, args.ops)
    if not chosen:
        parser.error("no bench case has the given --sizes and --ops")

    torch_bench.set_threads(THREADS)
    impl = import_impl(args.impl)
    # The expected values of float16 / bfloat16 rows come from nnref in float64, as in the suite.
    reference_impl = import_impl("nnref") if any(d not in DTYPES for d in args.dtypes) else None
    env = environment(impl)
    blas = env["blas"]
    git = env["impl_git"]
    at = "" if git is None else f" ({git['commit'][:10]}{' + changes' if git['dirty'] else ''})"
    print(
        f"{impl.__name__} {env['impl_version']}{at} vs torch {env['torch']} "
        f"| numpy {env['numpy']} "
        f"| python {env['python']} | {env['cpu']} ({env['cpu_count']} CPUs)"
    )
    print(
        f"threads: torch {env['torch_threads']}, NumPy BLAS {blas.get('name')} "
        f"{blas.get('version')}: {blas.get('num_threads')} ({blas.get('num_threads_source')})"
    )

    pauses = measure_pauses()
    print(
        f"idle-thread spin after a call: NumPy BLAS {pauses.nnref_s * 1e3:.0f} ms, "
        f"torch {pauses.torch_s * 1e3:.0f} ms (slept between blocks)"
    )
    waiter = QuietWaiter(args.wait_quiet)
    waiter.wait()
    probe = SpeedProbe()
    # NumPy's GEMM peak, measured before and after the cases; %peak uses the better one. Not in
    # float16 / bfloat16: NumPy has no GEMM in them (float16: a plain loop; bfloat16: done in
    # float32), so no peak in the format to compare with.
    peak_dtypes = [d for d in args.dtypes if d in DTYPES]
    peak_runs: dict[str, list[dict[str, Any]]] = {}
    for dtype in peak_dtypes:
        waiter.wait()
        peak_runs[dtype] = [gemm_peak(dtype, pauses)]
    peaks = {dtype: best_peak(runs) for dtype, runs in peak_runs.items()}

    rows: list[Row] = []
    start = time.perf_counter()
    print(TABLE_HEADER, file=sys.stderr)
    for size in args.sizes:
        for dtype in args.dtypes:
            for record, bench in chosen:
                if bench.size != size:
                    continue
                arrays, expected = case_inputs(bench.case, dtype, reference_impl)
                for direction in args.directions:
                    job = make_job(impl, record, bench, dtype, direction, arrays, expected)
                    peak = peaks[dtype]["numpy_gflops"] if dtype in peaks else None
                    rows.append(
                        run_case(job, args.repeats, pauses, peak, args.retries, waiter, probe)
                    )
                    del job
                    print(format_row(rows[-1]), file=sys.stderr, flush=True)
                del arrays, expected
    elapsed = time.perf_counter() - start
    for dtype in peak_dtypes:
        waiter.wait()
        peak_runs[dtype].append(gemm_peak(dtype, pauses))
    peaks = {dtype: best_peak(runs) for dtype, runs in peak_runs.items()}
    for row in rows:
        if row.probe_ms is not None:
            row.probe_slowdown = row.probe_ms / (probe.best_s * 1e3)
        if row.nnref_gflops is not None and row.dtype in peaks:
            row.pct_gemm_peak = 100.0 * row.nnref_gflops / peaks[row.dtype]["numpy_gflops"]

    print()
    for dtype, p in peaks.items():
        runs = ", ".join(f"{r['numpy_gflops']:.1f}" for r in p["runs"])
        print(
            f"GEMM peak {dtype} (n={p['n']}): NumPy {p['numpy_gflops']:.1f} GFLOP/s "
            f"(runs: {runs}), torch {p['torch_gflops']:.1f} GFLOP/s"
        )
    for dtype in args.dtypes:
        if dtype not in peaks:
            print(f"GEMM peak {dtype}: n/a (NumPy has no {dtype} GEMM; %peak not computed)")
    print()
    checks = check_targets(rows)
    print_table(rows, checks)
    print_targets(checks)
    counts = {s: sum(r.status == s for r in rows) for s in ("ok", "n/a", "error")}
    differ = any(r.agrees is False and not low_precision(r) for r in rows)
    beyond = any(r.agrees is False and low_precision(r) for r in rows)
    print(f"rows: {counts['ok']} timed, {counts['n/a']} n/a, {counts['error']} error"
          f"{', some differ from torch' if differ else ''}"
          f"{', some beyond their low-precision bound' if beyond else ''}")
    print(f"(benchmark time {elapsed:.0f} s, {waiter.waited_s:.0f} s of it waiting for quiet)")

    if args.markdown is not None:
        args.markdown.write_text(markdown_table(rows, checks))
        print(f"wrote {args.markdown}")
    if args.json is not None:
        payload = {
            "environment": env,
            "settings": {
                "threads": THREADS,
                "sizes": args.sizes,
                "dtypes": args.dtypes,
                "low_precision_reference": None if reference_impl is None else
                f"{reference_impl.__name__} in float64 on the inputs as stored",
                "ops": args.ops,
                "directions": args.directions,
                "seed": SEED,
                "cases": [
                    {"record": r.name, "label": b.label, "size": b.size, **b.case.to_dict()}
                    for r, b in chosen
                ],
                "repeats": args.repeats,
                "min_block_s": MIN_BLOCK_S,
                "lead_in_below_s": LEAD_IN_BELOW_S,
                "group_budget_s": GROUP_BUDGET_S,
                "pause_after_nnref_s": pauses.nnref_s,
                "pause_after_torch_s": pauses.torch_s,
                "min_repeats": MIN_REPEATS,
                "max_repeats": MAX_REPEATS,
                "retries": args.retries,
                "wait_quiet_s": args.wait_quiet,
                "busy_cores": BUSY_CORES,
                "slow_factor": SLOW_FACTOR,
                "target_rank": TARGET_RANK,
                "probe_best_ms": probe.best_s * 1e3,
            },
            "gemm_peak": peaks,
            "rows": [asdict(r) for r in rows],
            "targets": [asdict(c) for c in checks],
            "elapsed_s": elapsed,
        }
        args.json.write_text(json.dumps(payload, indent=2, allow_nan=True) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
