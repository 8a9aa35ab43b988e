#!/usr/bin/env python3
"""Time nnref against its peers (torch, JAX, onnxruntime; CPU) and the machine's limits.

    python benchmarks/bench.py [--sizes small,medium,large]
                               [--dtypes float32,float64,float16,bfloat16]
                               [--ops conv,max_pool,...] [--directions fwd,bwd,fwd+bwd]
                               [--peers torch,jax,onnxruntime] [--repeats R] [--json FILE]
                               [--markdown FILE] [--retries N] [--wait-quiet S] [--impl MODULE]

The rows come from the op records (``conformance.ops.RECORDS``): every ``BenchCase`` of every
record's ``bench``, in each dtype and each direction (forward, backward, forward+backward).
nnref runs through the case's own call (``case.call_args``); each peer runs the record's row of
its adapter's table, prepared by its bench module (``conformance/backends/<name>_bench.py``, named
by the backend registry; inputs converted once, JAX compiled once, onnxruntime sessions built
once; this script never imports a framework itself). Before timing, every peer's outputs are
compared with nnref's with the suite's error model (``tolerance.comparison_atol`` of the record's
bounds, ``comparison.compare_output``).

Each row is held to a limit measured in the same run: NumPy's GEMM peak for the records that
count flops (conv, conv_transpose, linear), the traffic limit (the bytes the call must move over
the copy bandwidth) for the others; every side's share of it is shown next to its time.

float16 and bfloat16 rows (``--dtypes``; bfloat16 needs ml_dtypes) run every side on the case's
float32 arrays rounded to the format (``low_precision.rounded_inputs``). Their agreement is the
suite's low-precision error model (``conformance/low_precision.py``): each side within the bound
of the arithmetic it declares for the function and format (nnref: float32 accumulation; a peer:
its adapter's ``CONFORMANCE_ACCUMULATION``) against nnref in float64 on the stored inputs; a call
a peer's adapter does not compute in the format (``Unsupported``) is an ``n/a`` cell naming its
registry id. NumPy has no float16 / bfloat16 GEMM, so these rows have no GEMM share and no
targets.

The sides run interleaved in blocks (nnref, torch, jax, onnxruntime, nnref, ...) after a warm-up,
with a pause after each block for the idle threads of its thread pool to stop spinning; every
reported time is the median over the blocks. Peak memory of each nnref call is measured
separately with tracemalloc (NumPy reports its buffers to it). See benchmarks/README.md for the
method, the columns and the targets. Timings and agreement are reported, never asserted: a row
nnref cannot run (a missing function, NotImplementedError, a call that raises) is reported as
``n/a`` or ``error``, a peer that cannot run a case as an ``n/a`` cell, and the script exits 0
unless the script itself fails.
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

# The conformance package (op records, error model, the peers) is not part of the nnref wheel:
# it is imported from this checkout.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from conformance import low_precision as lp  # noqa: E402
from conformance import tolerance  # noqa: E402
from conformance.backend_registry import BACKENDS  # noqa: E402
from conformance.backends import Unsupported  # noqa: E402
from conformance.comparison import Mismatch, compare_output  # noqa: E402
from conformance.ops import RECORDS, BenchCase, OpRecord  # noqa: E402

# The default dtypes, and the only ones the targets and the GEMM peak apply to.
DTYPES = ("float32", "float64")
# The low-precision storage formats this installation can make (bfloat16 with ml_dtypes), by name.
STORAGE = {d.name: d for d in lp.storage_dtypes()}
# What --dtypes accepts.
DTYPE_CHOICES = DTYPES + tuple(STORAGE)
# Row directions: the short name shown in the table -> the peers' direction (bench_peer).
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
# The targets of the matrix ops, the memory-bound ops and peak memory (benchmarks/README.md):
# forward and backward at the large size at least this share of NumPy's GEMM peak ...
MATRIX_PEAK_PCT = 75.0
# ... at least this share of the traffic limit (a third: a fused pass at a third of the copy
# bandwidth, or three passes at full speed) ...
TRAFFIC_PCT = 100.0 / 3
# ... and at most this many times the bytes the call moves (inputs + outputs) allocated at peak.
MEM_IO = 2.0

Call = Callable[[], Any]


def _counts_flops(family: str) -> bool:
    return next(r for r in RECORDS if r.name == family).bench_flops is not None


def _earlier_matrix_target(family: str) -> bool:
    """Whether the earlier round's matrix-op targets (time against torch, 60 % of the GEMM peak)
    apply: they were set with the peak-memory target, on the record that declares one."""
    return next(r for r in RECORDS if r.name == family).bench_peak_memory is not None


@dataclass
class Side:
    """One implementation the benchmark times: nnref (``module`` None: the --impl module) or a
    peer, a framework's bench module (``conformance/backends/bench_peer.py``'s interface) named
    by its backend registry row (``Backend.bench``)."""

    name: str  # "nnref", or the backend's registry name: "torch", "jax", "onnxruntime"
    short: str  # its column label
    module: ModuleType | None = None
    # Seconds to sleep after one of its blocks, so that its idle pool threads stop spinning.
    pause_s: float = 0.0


@dataclass
class Job:
    """One benchmark row: a record's bench case in one dtype and direction, and every side's
    call."""

    record: OpRecord
    bench: BenchCase
    dtype: str
    direction: str  # a key of DIRECTIONS
    x_nbytes: int
    flops: float | None
    # Bytes the direction's calls must read and write at least (every array input once, every
    # output once): the traffic limit's numerator. Set from nnref's first call.
    io_bytes: int = 0
    # Peak-memory limit in multiples of x.nbytes, if a target applies.
    mem_limit: float | None = None
    # Set by make_job; None with `status` "n/a" or "error" and the reason in `reason`.
    nnref_call: Call | None = None
    # Each peer's prepared call, or why it has none ("n/a: ..."); by side name.
    peer_calls: dict[str, Any] = field(default_factory=dict)
    peer_status: dict[str, str] = field(default_factory=dict)
    # (nnref result, {peer: its contract outputs}) -> agreement statistics, see agreement()
    check: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None
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
    status: str  # "ok"; "n/a" (nnref lacks the function or the call); "error" (nnref raised)
    reason: str
    nnref_ms: float | None = None
    # Each peer that ran: its median ms per call; each peer that did not: why (peer_status).
    peer_ms: dict[str, float] = field(default_factory=dict)
    peer_status: dict[str, str] = field(default_factory=dict)
    torch_ms: float | None = None
    ratio: float | None = None  # nnref / torch
    fastest_peer: str | None = None
    ratio_fastest: float | None = None  # nnref / the fastest peer
    nnref_gflops: float | None = None
    peer_gflops: dict[str, float] = field(default_factory=dict)
    torch_gflops: float | None = None
    pct_gemm_peak: float | None = None
    # The limit this row is held to: "gemm" (NumPy's GEMM peak, the records that count flops)
    # or "traffic" (io_bytes over the copy bandwidth, every other record); each side's share
    # of it in percent.
    limit: str = ""
    pct_limit: dict[str, float] = field(default_factory=dict)
    io_bytes: int = 0
    nnref_peak_bytes: int | None = None
    x_nbytes: int = 0
    mem_multiple: float | None = None
    mem_io: float | None = None  # nnref's peak bytes / io_bytes
    # The same for the peers whose framework can tell (PreparedCall.peak_bytes: JAX's XLA
    # buffer assignment); torch and onnxruntime keep no allocator counters on the CPU.
    peer_peak_bytes: dict[str, int] = field(default_factory=dict)
    peer_mem_io: dict[str, float] = field(default_factory=dict)
    mem_limit: float | None = None
    repeats: int = 0
    calls_per_block: dict[str, int] = field(default_factory=dict)
    samples_ms: dict[str, list[float]] = field(default_factory=dict, repr=False)
    # Agreement of every peer with nnref: the largest |nnref - peer| / tolerance over all outputs
    # and peers (<= 1: within the error model), the largest relative difference, and what was
    # out of tolerance (side-prefixed). A peer that differs is still timed.
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


def environment(impl: ModuleType, peers: Sequence[Side]) -> dict[str, Any]:
    info: dict[str, Any] = {}
    for side in peers:
        assert side.module is not None
        info.update(side.module.info())
    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "impl": impl.__name__,
        "impl_version": getattr(impl, "__version__", None),
        "impl_file": getattr(impl, "__file__", None),
        "impl_git": git_state(getattr(impl, "__file__", None)),
        "peers": [s.name for s in peers],
        **info,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "blas": blas_info(),
        "env": {
            k: os.environ.get(k)
            for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS")
        },
    }


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


def measure_pauses(peers: Sequence[Side]) -> float:
    """Each side's spin-down plus a margin: NumPy's BLAS (a matmul; returned, nnref's pause) and
    every peer's thread pool (its ``spin_probe``; stored on the side)."""
    a = np.ones((512, 512))

    def numpy_call() -> None:
        a @ a

    for side in peers:
        assert side.module is not None
        probe = side.module.spin_probe()
        side.pause_s = max(measure_spin_down(probe) for _ in range(2)) + SPIN_STEP_S
    return max(measure_spin_down(numpy_call) for _ in range(2)) + SPIN_STEP_S


def time_sides(
    calls: Sequence[Call], pauses: Sequence[float], repeats: int | None
) -> tuple[list[list[float]], list[int]]:
    """Interleaved blocks a, b, c, a, b, c, ...: per-call seconds of each side's blocks, and each
    side's calls per block."""
    lead_in, per_block, first = [], [], []
    for call, pause in zip(calls, pauses, strict=True):
        t = _warm_up(call)
        time.sleep(pause)
        first.append(t)
        per_block.append(max(1, math.ceil(MIN_BLOCK_S / t)))
        lead_in.append(t < LEAD_IN_BELOW_S)
    if repeats is None:
        one_round = sum((n + lead) * t + pause for n, lead, t, pause
                        in zip(per_block, lead_in, first, pauses, strict=True))
        budget = GROUP_BUDGET_S * len(calls) / 2  # ~1.5 s per pair of sides, as with two
        repeats = min(MAX_REPEATS, max(MIN_REPEATS, int(budget / one_round)))
    samples: list[list[float]] = [[] for _ in calls]
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            for i, (call, pause) in enumerate(zip(calls, pauses, strict=True)):
                if lead_in[i]:
                    call()
                samples[i].append(_time_calls(call, per_block[i]))
                time.sleep(pause)
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples, per_block


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


def gemm_peak(dtype: str, nnref_pause: float, peers: Sequence[Side], n: int = 2048,
              tries: int = 5) -> dict[str, Any]:
    """Best-of-`tries` GFLOP/s of an n x n matmul, for NumPy (the peak) and each peer with a
    ``matmul`` (context)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype=dtype)

    def numpy_mm() -> None:
        np.matmul(a, b, out=out)

    flops = 2.0 * n**3
    with OtherLoad() as load:
        best_np = min(_time_calls(numpy_mm, 1) for _ in range(tries + 1))
        time.sleep(nnref_pause)
        peers_gflops = {}
        for side in peers:
            matmul = getattr(side.module, "matmul", None)
            if matmul is not None:
                mm = matmul(a, b)
                peers_gflops[side.name] = flops / min(_time_calls(mm, 1)
                                                      for _ in range(tries + 1)) / 1e9
                time.sleep(side.pause_s)
    return {
        "n": n,
        "numpy_gflops": flops / best_np / 1e9,
        "numpy_best_ms": best_np * 1e3,
        "peers_gflops": peers_gflops,
        "other_load": load.cores,
    }


def best_peak(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The fastest of several GEMM-peak measurements (a peak is a best case), with all of them."""
    peers = {p for r in runs for p in r["peers_gflops"]}
    return {
        "n": runs[0]["n"],
        "numpy_gflops": max(r["numpy_gflops"] for r in runs),
        "peers_gflops": {p: max(r["peers_gflops"].get(p, 0.0) for r in runs) for p in peers},
        "runs": list(runs),
    }


def copy_bandwidth(peers: Sequence[Side], nbytes: int = 1 << 27, tries: int = 5
                   ) -> dict[str, Any]:
    """The machine's copy bandwidth, bytes read + written per second: the best of NumPy's
    single-threaded ``np.copyto`` and each peer's own copy (``copy_probe``, where it has one:
    torch's multithreaded ``copy_``) of ``nbytes`` between two fresh buffers, best of
    ``tries``. The traffic limit of a row is its ``io_bytes`` over this."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)

    def numpy_copy() -> None:
        np.copyto(dst, src)

    rates = {"numpy": 2 * nbytes / min(_time_calls(numpy_copy, 1) for _ in range(tries + 1))}
    for side in peers:
        probe = getattr(side.module, "copy_probe", None)
        if probe is not None:
            call = probe(nbytes)
            rates[side.name] = 2 * nbytes / min(_time_calls(call, 1) for _ in range(tries + 1))
            time.sleep(side.pause_s)
    best = max(rates, key=rates.__getitem__)
    return {"bytes": nbytes, "gbps": rates[best] / 1e9, "by": best,
            "all_gbps": {k: v / 1e9 for k, v in rates.items()}}


def best_bandwidth(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The best of several copy-bandwidth measurements, with all of them."""
    best = max(runs, key=lambda r: r["gbps"])
    return {**best, "runs": list(runs)}


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
              ours: Mapping[str, Any], peers: Mapping[str, Mapping[str, np.ndarray]]
              ) -> dict[str, Any]:
    """nnref's outputs against each peer's, within the error model.

    Both compute in the case's dtype, so each output may differ by both implementations' bounds:
    ``tolerance.comparison_atol(bound, bound)``, as ``conformance diff`` compares two backends.
    ``disagrees`` names the peers with an output out of tolerance.
    """
    dtype = np.dtype(dtype_name)
    a64 = {k: v.astype(np.float64) for k, v in arrays.items()}
    bounds: dict[str, Any] = {}
    with np.errstate(all="ignore"):
        if direction in ("fwd", "fwd+bwd"):
            bounds.update(tolerance.forward_bounds(case, a64, dtype))
        if direction in ("bwd", "fwd+bwd"):
            bounds.update(tolerance.backward_bounds(case, a64, dtype))
    ratio, rel, failures, disagrees = 0.0, 0.0, [], []
    for side, theirs in peers.items():
        broken = []
        for name, value in theirs.items():
            if ours.get(name) is None:
                broken.append(f"{side}: {name}: not returned by nnref")
                continue
            bound = bounds.get(name, 0.0)
            with np.errstate(all="ignore"):
                s = compare_output(name, ours[name], value,
                                   tolerance.comparison_atol(bound, bound), dtype.name)
            ratio, rel = max(ratio, s["max_ratio"]), max(rel, s["max_rel"])
            broken.extend(f"{side}: {f}" for f in s["failures"])
        failures.extend(broken)
        if broken:
            disagrees.append(side)
    return {"max_tol_ratio": ratio, "max_rel_err": rel, "agrees": not failures,
            "check_failures": failures, "disagrees": disagrees}


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


def arithmetics(impl: ModuleType, peers: Sequence[Side], case: Any, dtype: str,
                direction: str) -> dict[str, dict[str, str]]:
    """Each side's declared accumulation per contract function of the row, in a low-precision
    dtype (empty otherwise): the implementation's own declaration (``lp.declared_accumulation``;
    one that declares nothing is held to the default, float32 accumulation), each peer's from
    its adapter (its bench module's ``accumulation``, float32 where it declares nothing)."""
    if dtype in DTYPES:
        return {}
    storage = STORAGE[dtype]
    names = [case.op if call == "forward" else case.backward_op for call in CALLS[direction]]
    declared = {"nnref": {f: lp.declared_accumulation(impl, f, storage) or "float32"
                          for f in names}}
    for side in peers:
        assert side.module is not None
        declared[side.name] = {f: side.module.accumulation(f, storage) or "float32"
                               for f in names}
    return declared


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
                            outputs: Mapping[str, Mapping[str, Any]], reference: Reference,
                            accumulation: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """Every side's outputs in float16 / bfloat16 (``outputs``: side -> its named outputs, nnref
    first), each within the bound of its own declared arithmetic (``lp.Arithmetic``: the storage
    format and the accumulation ``accumulation`` names for each contract function) against nnref
    in float64 on the stored inputs.

    The sides are not compared with each other: each may be anywhere within its own bound.
    ``max_tol_ratio`` is the largest side's |error| / bound (<= 1: all within);
    ``bound_ratio`` has each, ``unbounded`` each side's largest fraction of elements without a
    finite bound; ``disagrees`` the peers beyond their bound.
    """
    storage = STORAGE[dtype_name]
    ratios: dict[str, float] = {}
    unbounded: dict[str, float] = {}
    failures: list[str] = []
    disagrees: list[str] = []
    for side, got in outputs.items():
        ratios[side] = unbounded[side] = 0.0
        for call in CALLS[direction]:
            function = case.op if call == "forward" else case.backward_op
            ratio, free, broken = _side_within_bound(case, storage, call, got, reference,
                                                     accumulation[side][function], side)
            ratios[side] = max(ratios[side], ratio)
            unbounded[side] = max(unbounded[side], free)
            failures.extend(broken)
            if broken and side != "nnref" and side not in disagrees:
                disagrees.append(side)
    ours = outputs["nnref"]
    rel = max((_max_rel_diff(ours, theirs) for side, theirs in outputs.items()
               if side != "nnref"), default=0.0)
    return {"max_tol_ratio": max(ratios.values()), "max_rel_err": rel,
            "agrees": not failures, "check_failures": failures, "bound_ratio": ratios,
            "unbounded": unbounded, "disagrees": disagrees}


def io_bytes(case: Any, arrays: Mapping[str, np.ndarray], direction: str,
             outputs: Mapping[str, Any]) -> int:
    """The bytes a direction's calls must move at least: every array argument of each contract
    call read once, every output written once (``outputs``: nnref's, by name). A fwd+bwd row
    counts both calls (the backward reads x again)."""
    total = 0
    for call in CALLS[direction]:
        args = case.call_args(call, arrays)
        total += sum(int(v.nbytes) for v in args.values() if isinstance(v, np.ndarray))
        total += sum(int(np.asarray(outputs[n]).nbytes) for n in case.outputs(call)
                     if outputs.get(n) is not None)
    return total


def make_job(impl: ModuleType, peers: Sequence[Side], record: OpRecord, bench: BenchCase,
             dtype: str, direction: str, arrays: Mapping[str, np.ndarray],
             reference: Reference | None = None) -> Job:
    """The row's calls (or why it is n/a): nnref's bound contract calls, each peer's prepared
    call (or why that peer is n/a).

    ``reference``: the expected values of a low-precision row (:func:`case_inputs`), whose
    agreement is then :func:`low_precision_agreement` instead of :func:`agreement`.
    """
    case = bench.case
    job = Job(record, bench, dtype, direction, x_nbytes=int(arrays["x"].nbytes),
              flops=nominal_flops(record, case, direction),
              mem_limit=memory_limit(record, bench, direction),
              accumulation=arithmetics(impl, peers, case, dtype, direction))
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
    for side in peers:
        assert side.module is not None
        try:
            job.peer_calls[side.name] = side.module.prepare(case, arrays, DIRECTIONS[direction])
        except NotImplementedError as exc:
            job.peer_status[side.name] = f"n/a: {exc}"
        except Unsupported as exc:  # a format or configuration the adapter does not compute
            job.peer_status[side.name] = f"n/a: {describe_exception(exc)}"
        except Exception as exc:  # a configuration the framework refuses
            job.peer_status[side.name] = f"n/a: raised {describe_exception(exc)}"

    def check(ours: Any, theirs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        try:
            mine = name_ours(ours)
        except TypeError as exc:
            return {"max_tol_ratio": math.inf, "max_rel_err": math.inf, "agrees": False,
                    "check_failures": [f"nnref {exc}"], "disagrees": [], "io_bytes": 0}
        if reference is not None:
            result = low_precision_agreement(case, dtype, direction, {"nnref": mine, **theirs},
                                             reference, job.accumulation)
        else:
            result = agreement(case, arrays, dtype, direction, mine, theirs)
        return {**result, "io_bytes": io_bytes(case, arrays, direction, mine)}

    job.check = check
    return job


def describe_exception(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 160 else text[:157] + "..."


def first_calls(job: Job) -> dict[str, Any] | None:
    """Run every side once and compare; None (and job.status set) when nnref cannot run. A peer
    that raises is dropped from the row (its status says why)."""
    assert job.nnref_call is not None and job.check is not None
    try:
        ours = job.nnref_call()
    except (NotImplementedError, Unsupported) as exc:
        job.status, job.reason = "n/a", f"nnref: {describe_exception(exc)}"
        return None
    except Exception as exc:
        job.status, job.reason = "error", f"nnref raised {describe_exception(exc)}"
        return None
    theirs: dict[str, dict[str, Any]] = {}
    for name, call in list(job.peer_calls.items()):
        try:
            theirs[name] = call.outputs(call.run())
        except Exception as exc:  # a configuration the framework refuses: nothing to compare
            job.peer_status[name] = f"n/a: raised {describe_exception(exc)}"
            del job.peer_calls[name]
    agreed = job.check(ours, theirs)
    job.io_bytes = agreed["io_bytes"]
    return agreed


def unavailable_row(job: Job) -> Row:
    case = job.bench.case
    return Row(op=job.op, label=job.bench.label, family=job.record.name, function=case.label,
               rank=case.rank, direction=job.direction, size=job.bench.size, dtype=job.dtype,
               case=case.to_dict(), status=job.status, reason=job.reason,
               x_nbytes=job.x_nbytes, mem_limit=job.mem_limit,
               peer_status=dict(job.peer_status),
               accumulation=job.accumulation if job.status == "ok" else {})


def run_case(
    job: Job,
    sides: Sequence[Side],
    repeats: int | None,
    peak_gflops: float | None,
    bandwidth: float | None,
    retries: int,
    waiter: QuietWaiter,
    probe: SpeedProbe,
) -> Row:
    """Time nnref and every peer that can run the row, interleaved; ``sides``: nnref first (its
    pause), then the peers. ``bandwidth``: bytes per second of the traffic limit."""
    if job.status != "ok":
        return unavailable_row(job)
    agreed = first_calls(job)
    if agreed is None:
        return unavailable_row(job)
    assert job.nnref_call is not None
    timed = [s for s in sides[1:] if s.name in job.peer_calls]
    calls = [job.nnref_call, *(job.peer_calls[s.name].run for s in timed)]
    pauses = [sides[0].pause_s, *(s.pause_s for s in timed)]
    # (badness, other load, probe seconds, timings) of the least disturbed attempt
    best: tuple[float, float, float, tuple[list[list[float]], list[int]]] | None = None
    attempts = 0
    while attempts <= retries:
        attempts += 1
        waiter.wait()
        before = probe.measure()
        with OtherLoad() as load:
            timings = time_sides(calls, pauses, repeats)
        probe_s = max(before, probe.measure())
        slowdown = probe_s / probe.best_s
        other = math.inf if load.cores is None else load.cores
        # Unknown load (no /proc/stat) cannot be improved by retrying: judge by the probe alone.
        badness = max(0.0 if load.cores is None else other / BUSY_CORES, slowdown / SLOW_FACTOR)
        if best is None or badness < best[0]:
            best = (badness, other, probe_s, timings)
        if badness <= 1.0:
            break
    assert best is not None
    _, other_load, probe_s, (samples, per_block) = best
    seconds = {side: statistics.median(s) for side, s
               in zip(["nnref", *(s.name for s in timed)], samples, strict=True)}
    row = unavailable_row(job)
    for side in agreed.get("disagrees", []):
        row.peer_status[side] = "differs from nnref beyond the error model (timed)"
    nnref_s = seconds.pop("nnref")
    row.nnref_ms = nnref_s * 1e3
    row.peer_ms = {k: v * 1e3 for k, v in seconds.items()}
    if "torch" in seconds:
        row.torch_ms = seconds["torch"] * 1e3
        row.ratio = nnref_s / seconds["torch"]
    if seconds:
        row.fastest_peer = min(seconds, key=seconds.__getitem__)
        row.ratio_fastest = nnref_s / seconds[row.fastest_peer]
    if job.flops:
        row.nnref_gflops = job.flops / nnref_s / 1e9
        row.peer_gflops = {k: job.flops / v / 1e9 for k, v in seconds.items()}
        row.torch_gflops = row.peer_gflops.get("torch")
        row.limit = "gemm"
        if peak_gflops:
            row.pct_gemm_peak = 100.0 * row.nnref_gflops / peak_gflops
            row.pct_limit = {"nnref": row.pct_gemm_peak,
                             **{k: 100.0 * g / peak_gflops for k, g in row.peer_gflops.items()}}
    row.io_bytes = job.io_bytes
    if not job.flops and bandwidth and job.io_bytes:
        row.limit = "traffic"
        floor_s = job.io_bytes / bandwidth
        row.pct_limit = {"nnref": 100.0 * floor_s / nnref_s,
                         **{k: 100.0 * floor_s / v for k, v in seconds.items()}}
    peak_bytes = peak_memory(job.nnref_call)
    row.nnref_peak_bytes = peak_bytes
    row.mem_multiple = peak_bytes / job.x_nbytes
    row.mem_io = peak_bytes / job.io_bytes if job.io_bytes else None
    for side in timed:
        peer_bytes = getattr(job.peer_calls[side.name], "peak_bytes", None)
        if peer_bytes is not None:
            row.peer_peak_bytes[side.name] = peer_bytes
            if job.io_bytes:
                row.peer_mem_io[side.name] = peer_bytes / job.io_bytes
    row.repeats = len(samples[0])
    names = ["nnref", *(s.name for s in timed)]
    row.calls_per_block = dict(zip(names, per_block, strict=True))
    row.samples_ms = {n: [t * 1e3 for t in s] for n, s in zip(names, samples, strict=True)}
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


def check_targets(rows: Sequence[Row]) -> list[TargetCheck]:
    """The README's targets, on the float32 / float64 rows that ran (the targets were set for
    those dtypes: float16 / bfloat16 rows have none), selected by record and size.

    Matrix ops (the records that count flops: conv, conv_transpose, linear): forward and
    backward at the large size at least MATRIX_PEAK_PCT % of NumPy's GEMM peak; at the medium
    size, every direction no slower than the fastest peer. Memory-bound ops (every other
    record): forward and backward at the large size no slower than torch and at least
    TRAFFIC_PCT % of the traffic limit; peak memory at most MEM_IO times the bytes the call
    moves (inputs + outputs), at the medium and large sizes (at the small ones a call's Python
    objects, a few KB, outweigh its arrays). The earlier targets at rank TARGET_RANK stand
    beside them (conv and the max-pool / batch-norm rows against torch, small shapes, conv's
    peak memory).
    """
    checks: list[TargetCheck] = []

    def add(target: str, row: Row, value: float, limit: float, unit: str, at_most: bool) -> None:
        met = value <= limit if at_most else value >= limit
        case = f"{row.op} {row.size} {row.dtype}"
        checks.append(TargetCheck(target, case, value, limit, unit, met))

    for row in rows:
        if row.status != "ok" or row.dtype not in DTYPES:
            continue
        matrix = _counts_flops(row.family)
        one_call = row.direction in ("fwd", "bwd")
        if matrix and one_call and row.size == "large" and row.pct_gemm_peak is not None:
            add("matrix op, % of NumPy GEMM peak", row, row.pct_gemm_peak, MATRIX_PEAK_PCT,
                "%", at_most=False)
        if matrix and row.size == "medium" and row.ratio_fastest is not None:
            add(f"matrix op / fastest peer ({row.fastest_peer})", row, row.ratio_fastest, 1.0,
                "x", at_most=True)
        if not matrix and one_call and row.size == "large":
            if row.ratio is not None:
                add("memory-bound op / torch", row, row.ratio, 1.0, "x", at_most=True)
            if row.limit == "traffic" and "nnref" in row.pct_limit:
                add("memory-bound op, % of traffic limit", row, row.pct_limit["nnref"],
                    TRAFFIC_PCT, "%", at_most=False)
        if not matrix and one_call and row.mem_io is not None and row.size != "small":
            add("peak memory / (inputs + outputs)", row, row.mem_io, MEM_IO, "x", at_most=True)
        if row.rank != TARGET_RANK or row.ratio is None:
            continue
        # the earlier targets: the matrix op's time and GEMM-peak targets against torch, on the
        # record they were set for (the one with a peak-memory target of its own: conv)
        conv = _earlier_matrix_target(row.family)
        if conv and row.direction == "fwd+bwd" and row.size in ("medium", "large"):
            limit = 1.3 if row.dtype == "float32" else 1.0
            add("conv fwd+bwd time / torch", row, row.ratio, limit, "x", at_most=True)
        if conv and row.direction == "fwd" and row.size == "large" and row.pct_gemm_peak:
            add("large conv fwd, % of NumPy GEMM peak", row, row.pct_gemm_peak, 60.0, "%",
                at_most=False)
        group = next((g for g in WINDOW_AND_NORM_LABELS if row.label.startswith(g)), None)
        if group is not None and row.direction == "fwd+bwd":
            add(f"{group} fwd+bwd time / torch", row, row.ratio, 1.5, "x", at_most=True)
        if row.size == "small":
            add("small shapes: time per call / torch", row, row.ratio, 1.0, "x", at_most=True)
        if row.mem_limit is not None and row.mem_multiple is not None:
            add("conv peak memory / x bytes", row, row.mem_multiple, row.mem_limit, "x",
                at_most=True)
    return checks


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def low_precision(r: Row) -> bool:
    """Whether the row is in a low-precision format (float16 / bfloat16)."""
    return r.dtype not in DTYPES


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
    for side, ratio in r.bound_ratio.items():
        text = f"{side} {_ratio_text(ratio)}"
        text += _accumulation_text(r.accumulation.get(side, {}))
        free = r.unbounded.get(side, 0.0)
        if free > 0:
            text += f" [bound infinite at {100 * free:.3g}% of elements]"
        parts.append(text)
    return "error/bound " + ", ".join(parts)


def side_cell(r: Row, side: str, width: int = 0) -> str:
    """A side's time in ms with its share of the row's limit: ``3.812 (41%)``; ``n/a`` /
    ``-`` where it did not run (the reasons are listed below the table)."""
    ms = r.nnref_ms if side == "nnref" else r.peer_ms.get(side)
    if ms is None:
        return ("n/a" if side in r.peer_status else "-").rjust(width)
    pct = r.pct_limit.get(side)
    share = "" if pct is None else f" ({pct:.0f}%)"
    mark = "!" if "differs" in r.peer_status.get(side, "") else ""
    return f"{ms:.3f}{share}{mark}".rjust(width)


def table_header(peers: Sequence[Side]) -> str:
    cells = "".join(f" {s.short + ' ms':>17}" for s in peers)
    return (f"{'case':<25} {'op':<17} {'size':<7} {'dtype':<8} {'nnref ms':>17}{cells} "
            f"{'/torch':>6} {'/best':>6} {'lim':>3} {'mem/io':>6} {'reps':>4} {'other':>5} "
            f"{'probe':>5}")


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


def format_row(r: Row, peers: Sequence[Side], checks: Sequence[TargetCheck] | None = None
               ) -> str:
    lead = f"{r.op:<25} {r.function:<17} {r.size:<7} {r.dtype:<8}"
    if r.status != "ok":
        return f"{lead} {r.status:>17}: {r.reason}"
    notes = []
    if disturbed(r):
        notes.append("*")
    if low_precision(r):
        notes.append(bound_text(r))
        if not r.agrees:
            notes.append(f"! beyond the low-precision error model: {'; '.join(r.check_failures)}")
    elif not r.agrees:
        notes.append(f"! differs beyond the error model (|diff| / tolerance "
                     f"{r.max_tol_ratio:.3g}): {'; '.join(r.check_failures)}")
    if checks:
        targets = target_notes(r, checks)
        if targets:
            notes.append(f"[{targets}]")
    cells = "".join(f" {side_cell(r, s.name, 17)}" for s in peers)
    limit = {"gemm": "mm", "traffic": "io"}.get(r.limit, "-")
    return (
        f"{lead} {side_cell(r, 'nnref', 17)}{cells} {_fmt(r.ratio, '6.2f'):>6} "
        f"{_fmt(r.ratio_fastest, '6.2f'):>6} {limit:>3} {_fmt(r.mem_io, '6.2f'):>6} "
        f"{r.repeats:>4} {_fmt(r.other_load, '5.2f'):>5} {_fmt(r.probe_slowdown, '5.2f'):>5} "
        + " ".join(notes)
    ).rstrip()


def peer_notes(rows: Sequence[Row]) -> list[str]:
    """Why peers did not run (or differ), each reason once with the rows it applies to."""
    reasons: dict[str, list[str]] = {}
    for r in rows:
        if r.status != "ok":
            continue
        for side, why in r.peer_status.items():
            reasons.setdefault(f"{side}: {why}", []).append(f"{r.op} {r.size} {r.dtype}")
    lines = []
    for reason, where in reasons.items():
        shown = ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
        lines.append(f"  {reason} -- {shown}")
    return lines


def print_table(rows: Sequence[Row], peers: Sequence[Side], checks: Sequence[TargetCheck]
                ) -> None:
    header = table_header(peers)
    print(header)
    print("-" * len(header))
    for r in rows:
        print(format_row(r, peers, checks))
    print("ms (p%): median time per call and its share of the row's limit (lim: mm = NumPy's "
          "GEMM peak, io = the traffic limit, inputs + outputs over the copy bandwidth); "
          "/torch, /best: nnref's time over torch's and over the fastest peer's; mem/io: "
          "nnref's peak memory over the bytes the call moves")
    if any(disturbed(r) for r in rows):
        print(
            f"* other processes used more than {BUSY_CORES} cores on average while this row was "
            f"timed (or it could not be told), or the machine ran more than {SLOW_FACTOR}x slower "
            "than at start-up (probe): its times are unreliable"
        )
    if any(low_precision(r) for r in rows):
        print("float16 / bfloat16: every side on the float32 case rounded to the format; "
              "error/bound: each side's largest |error| / the bound of its declared arithmetic "
              "(float32 accumulation unless 'storage acc.') against nnref in float64 on the stored "
              "inputs (<= 1: within); no GEMM peak in these formats (NumPy has no GEMM in them); "
              "no targets")
    if any(r.status != "ok" for r in rows):
        print("n/a (row): nnref (or --impl) lacks the function or raises NotImplementedError; "
              "error: the nnref call raised")
    notes = peer_notes(rows)
    if notes:
        print("peers not timed (n/a) or differing (!):")
        print("\n".join(notes))


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


def markdown_table(rows: Sequence[Row], peers: Sequence[Side],
                   checks: Sequence[TargetCheck], targets_only: bool = False) -> str:
    """The status table: one line per row (`*`: disturbed); each side's time with its share of
    the row's limit; a low-precision row's last cell is its agreement (:func:`bound_text`; it
    has no targets). ``targets_only``: only the rows a target checks (the README's table)."""
    if targets_only:
        checked = {c.case for c in checks}
        rows = [r for r in rows if f"{r.op} {r.size} {r.dtype}" in checked]
    names = " | ".join(f"{s.short} ms (% limit)" for s in peers)
    lines = [f"| case | op | nnref ms (% limit) | {names} | nnref / fastest | mem / io | "
             "targets |",
             "|---|---|---:|" + "---:|" * len(peers) + "---:|---:|---|"]
    for r in rows:
        name = f"{r.op} {r.size} {r.dtype}{' *' if disturbed(r) else ''}"
        if r.status != "ok":
            lines.append(f"| {name} | {r.function} | {r.status} |" + " |" * len(peers)
                         + f" | | {r.reason} |")
            continue
        if low_precision(r):
            differs = "" if r.agrees else " (beyond the error model)"
            last = bound_text(r)
        else:
            differs = "" if r.agrees else " (a peer differs)"
            last = target_notes(r, checks)
        cells = " | ".join(side_cell(r, s.name) for s in peers)
        fastest = ("-" if r.ratio_fastest is None
                   else f"{r.ratio_fastest:.2f} ({r.fastest_peer})")
        peers_mem = "".join(f"; {k} {v:.2f}" for k, v in r.peer_mem_io.items())
        lines.append(
            f"| {name}{differs} | {r.function} | {side_cell(r, 'nnref')} | {cells} | "
            f"{fastest} | {_fmt(r.mem_io, '.2f')}{peers_mem} | {last} |"
        )
    return "\n".join(lines) + "\n"


PEER_NAMES = tuple(b.name for b in BACKENDS if b.bench)
# The part of a README (--readme) the benchmark writes: between these lines.
README_BEGIN = "<!-- bench table: written by benchmarks/bench.py --readme -->"
README_END = "<!-- end of bench table -->"


def readme_section(rows: Sequence[Row], peers: Sequence[Side], checks: Sequence[TargetCheck],
                   env: Mapping[str, Any], peaks: Mapping[str, Mapping[str, Any]],
                   bandwidth: Mapping[str, Any], argv: Sequence[str]) -> str:
    """What --readme writes: how and where it was measured, the limits, the count of targets
    met, and the rows that targets check (:func:`markdown_table`)."""
    git = env.get("impl_git") or {}
    commit = git.get("commit", "?")[:10] + (" + changes" if git.get("dirty") else "")
    versions = ", ".join(f"{s.name} {env.get(s.name, '?')}" for s in peers)
    limits = "; ".join(f"GEMM peak {d} {p['numpy_gflops']:.0f} GFLOP/s" for d, p in peaks.items())
    met = sum(c.met for c in checks)
    disturbed_rows = sum(disturbed(r) for r in rows)
    lines = [
        f"`python benchmarks/bench.py {' '.join(argv)}` on {env['cpu']} ({env['cpu_count']} "
        f"CPUs), nnref {commit}, {versions}, NumPy {env['numpy']}; {limits}; copy bandwidth "
        f"{bandwidth['gbps']:.1f} GB/s. **{met} of {len(checks)} target checks met**"
        f"{f'; {disturbed_rows} rows disturbed (*)' if disturbed_rows else ''}. Each cell: ms per "
        "call (share of the row's limit: GEMM peak for conv, conv_transpose and linear, the "
        "traffic limit for the rest); the rows below are those a target checks.",
        "",
        markdown_table(rows, peers, checks, targets_only=True).rstrip("\n"),
    ]
    return "\n".join(lines)


def write_readme(path: Path, section: str) -> None:
    """Replace the text between README_BEGIN and README_END in ``path`` (ValueError naming the
    marker when it has none; nothing is written then)."""
    text = path.read_text()
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{path} has no '{README_BEGIN}' ... '{README_END}' section")
    head = text[:start + len(README_BEGIN)]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{head}\n{section}\n{text[end:]}")
    tmp.replace(path)


def load_peers(names: Sequence[str]) -> tuple[list[Side], dict[str, str]]:
    """The peers' bench modules (registry order), with THREADS threads; and the ones that could
    not be imported, with why (a framework not installed is reported, not fatal)."""
    peers, missing = [], {}
    for row in BACKENDS:
        if row.name not in names:
            continue
        try:
            module = importlib.import_module(row.bench)
        except ImportError as exc:
            missing[row.name] = f"{exc} ({row.install_hint})"
            continue
        module.set_threads(THREADS)
        peers.append(Side(row.name, row.short, module))
    return peers, missing


def rescale_limits(row: Row, peaks: Mapping[str, Mapping[str, Any]], bandwidth: float,
                   probe: SpeedProbe) -> None:
    """Shares of the limits and the probe slowdown against the run's final best values (the
    GEMM peak and copy bandwidth measured again after the cases, the fastest probe)."""
    if row.probe_ms is not None:
        row.probe_slowdown = row.probe_ms / (probe.best_s * 1e3)
    times = {"nnref": row.nnref_ms, **row.peer_ms}
    if row.limit == "gemm" and row.nnref_gflops is not None and row.dtype in peaks:
        peak = peaks[row.dtype]["numpy_gflops"]
        row.pct_gemm_peak = 100.0 * row.nnref_gflops / peak
        gflops = {"nnref": row.nnref_gflops, **row.peer_gflops}
        row.pct_limit = {k: 100.0 * g / peak for k, g in gflops.items()}
    elif row.limit == "traffic" and row.io_bytes:
        floor_ms = row.io_bytes / bandwidth * 1e3
        row.pct_limit = {k: 100.0 * floor_ms / ms for k, ms in times.items() if ms}


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
                        help="write the status table (Markdown, every row) here")
    parser.add_argument("--readme", type=Path, default=None,
                        help="rewrite the bench section of this README (between its "
                        "'bench table' markers) with the rows the targets check")
    parser.add_argument(
        "--impl", default="nnref", help="module to benchmark against the peers (default: nnref)"
    )
    parser.add_argument(
        "--peers",
        default=",".join(PEER_NAMES),
        type=lambda t: parse_list(t, PEER_NAMES, "--peers"),
        help=f"comma-separated frameworks timed next to it, of {','.join(PEER_NAMES)} "
        "(default: all; one that is not installed is reported and left out)",
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
    if args.readme is not None and README_BEGIN not in (
            args.readme.read_text() if args.readme.is_file() else ""):
        parser.error(f"--readme {args.readme}: no '{README_BEGIN}' line in it")

    peers, missing = load_peers(args.peers)
    impl = import_impl(args.impl)
    # The expected values of float16 / bfloat16 rows come from nnref in float64, as in the suite.
    reference_impl = import_impl("nnref") if any(d not in DTYPES for d in args.dtypes) else None
    env = environment(impl, peers)
    blas = env["blas"]
    git = env["impl_git"]
    at = "" if git is None else f" ({git['commit'][:10]}{' + changes' if git['dirty'] else ''})"
    versions = ", ".join(f"{s.name} {env.get(s.name, '?')}" for s in peers) or "no peer"
    print(
        f"{impl.__name__} {env['impl_version']}{at} vs {versions} "
        f"| numpy {env['numpy']} "
        f"| python {env['python']} | {env['cpu']} ({env['cpu_count']} CPUs)"
    )
    for name, why in missing.items():
        print(f"peer {name}: not timed ({why})")
    threads = ", ".join(f"{k.removesuffix('_threads')} {v}" for k, v in env.items()
                        if k.endswith("_threads") and "interop" not in k)
    print(
        f"threads: {threads + ', ' if threads else ''}NumPy BLAS {blas.get('name')} "
        f"{blas.get('version')}: {blas.get('num_threads')} ({blas.get('num_threads_source')})"
    )

    nnref_side = Side("nnref", "nnref", None, measure_pauses(peers))
    sides = [nnref_side, *peers]
    print("idle-thread spin after a call: " + ", ".join(
        f"{'NumPy BLAS' if s.module is None else s.name} {s.pause_s * 1e3:.0f} ms"
        for s in sides) + " (slept between blocks)")
    waiter = QuietWaiter(args.wait_quiet)
    waiter.wait()
    probe = SpeedProbe()
    # NumPy's GEMM peak and the copy bandwidth, measured before and after the cases; the better
    # of each is used. No GEMM peak in float16 / bfloat16: NumPy has no GEMM in them (float16: a
    # plain loop; bfloat16: done in float32), so no peak in the format to compare with.
    peak_dtypes = [d for d in args.dtypes if d in DTYPES]
    peak_runs: dict[str, list[dict[str, Any]]] = {}
    for dtype in peak_dtypes:
        waiter.wait()
        peak_runs[dtype] = [gemm_peak(dtype, nnref_side.pause_s, peers)]
    peaks = {dtype: best_peak(runs) for dtype, runs in peak_runs.items()}
    waiter.wait()
    bandwidth_runs = [copy_bandwidth(peers)]

    rows: list[Row] = []
    start = time.perf_counter()
    print(table_header(peers), file=sys.stderr)
    for size in args.sizes:
        for dtype in args.dtypes:
            for record, bench in chosen:
                if bench.size != size:
                    continue
                arrays, expected = case_inputs(bench.case, dtype, reference_impl)
                for direction in args.directions:
                    job = make_job(impl, peers, record, bench, dtype, direction, arrays,
                                   expected)
                    peak = peaks[dtype]["numpy_gflops"] if dtype in peaks else None
                    bandwidth = best_bandwidth(bandwidth_runs)["gbps"] * 1e9
                    rows.append(run_case(job, sides, args.repeats, peak, bandwidth,
                                         args.retries, waiter, probe))
                    del job
                    print(format_row(rows[-1], peers), file=sys.stderr, flush=True)
                del arrays, expected
    elapsed = time.perf_counter() - start
    for dtype in peak_dtypes:
        waiter.wait()
        peak_runs[dtype].append(gemm_peak(dtype, nnref_side.pause_s, peers))
    peaks = {dtype: best_peak(runs) for dtype, runs in peak_runs.items()}
    waiter.wait()
    bandwidth_runs.append(copy_bandwidth(peers))
    bandwidth = best_bandwidth(bandwidth_runs)
    for row in rows:
        rescale_limits(row, peaks, bandwidth["gbps"] * 1e9, probe)

    print()
    for dtype, p in peaks.items():
        runs = ", ".join(f"{r['numpy_gflops']:.1f}" for r in p["runs"])
        others = "".join(f", {k} {v:.1f} GFLOP/s" for k, v in p["peers_gflops"].items())
        print(f"GEMM peak {dtype} (n={p['n']}): NumPy {p['numpy_gflops']:.1f} GFLOP/s "
              f"(runs: {runs}){others}")
    for dtype in args.dtypes:
        if dtype not in peaks:
            print(f"GEMM peak {dtype}: n/a (NumPy has no {dtype} GEMM; %peak not computed)")
    runs = ", ".join(f"{r['gbps']:.1f}" for r in bandwidth["runs"])
    print(f"copy bandwidth (read + write, {bandwidth['bytes'] >> 20} MiB): "
          f"{bandwidth['gbps']:.1f} GB/s by {bandwidth['by']} (runs: {runs}; "
          + ", ".join(f"{k} {v:.1f}" for k, v in bandwidth["all_gbps"].items()) + ")")
    print()
    checks = check_targets(rows)
    print_table(rows, peers, checks)
    print_targets(checks)
    counts = {s: sum(r.status == s for r in rows) for s in ("ok", "n/a", "error")}
    differ = any(r.agrees is False and not low_precision(r) for r in rows)
    beyond = any(r.agrees is False and low_precision(r) for r in rows)
    print(f"rows: {counts['ok']} timed, {counts['n/a']} n/a, {counts['error']} error"
          f"{', some peers differ from nnref' if differ else ''}"
          f"{', some beyond their low-precision bound' if beyond else ''}")
    print(f"(benchmark time {elapsed:.0f} s, {waiter.waited_s:.0f} s of it waiting for quiet)")

    if args.markdown is not None:
        args.markdown.write_text(markdown_table(rows, peers, checks))
        print(f"wrote {args.markdown}")
    if args.readme is not None:
        write_readme(args.readme, readme_section(rows, peers, checks, env, peaks, bandwidth,
                                                 sys.argv[1:] if argv is None else argv))
        print(f"wrote the bench section of {args.readme}")
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
                "peers": [s.name for s in peers],
                "peers_not_installed": missing,
                "pauses_s": {s.name: s.pause_s for s in sides},
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
            "copy_bandwidth": bandwidth,
            "targets_set": {"matrix_peak_pct": MATRIX_PEAK_PCT, "traffic_pct": TRAFFIC_PCT,
                            "mem_io": MEM_IO},
            "rows": [asdict(r) for r in rows],
            "targets": [asdict(c) for c in checks],
            "elapsed_s": elapsed,
        }
        args.json.write_text(json.dumps(payload, indent=2, allow_nan=True) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
