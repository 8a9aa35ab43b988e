#!/usr/bin/env python3
"""Time nnref against torch (CPU) in the same process.

    python benchmarks/bench.py [--sizes small,medium,large] [--dtypes float32,float64]
                               [--ops conv,pool,bn] [--repeats R] [--json FILE]
                               [--retries N] [--wait-quiet S] [--impl MODULE]

The two sides run interleaved in blocks (nnref, torch, nnref, torch, ...) after a warm-up, with a
pause after each block for the idle threads of its thread pool to stop spinning; every reported
time is the median over the blocks. Peak memory of each nnref call is measured separately with
tracemalloc (NumPy reports its buffers to it). See benchmarks/README.md for the method, the
columns and the targets. Timings are reported, never asserted: the script exits 0 unless
something raises.
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
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

SIZES: dict[str, dict[str, int]] = {
    "small": {"N": 2, "C": 3, "H": 9, "W": 9, "Co": 4, "k": 3, "pad": 0},
    "medium": {"N": 8, "C": 16, "H": 32, "W": 32, "Co": 32, "k": 3, "pad": 1},
    "large": {"N": 32, "C": 64, "H": 56, "W": 56, "Co": 64, "k": 3, "pad": 1},
}
DTYPES = ("float32", "float64")
OPS = ("conv", "pool", "bn")
# (label, kernel, stride, padding) of the two max-pool configurations.
POOLS = (("maxpool k3s2p1", 3, 2, 1), ("maxpool k2s2", 2, 2, 0))

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

# Agreement with torch, checked once per case (max |nnref - torch| / max |torch|).
CHECK_TOL = {"float32": 1e-4, "float64": 1e-10}

# A row timed while other processes used more CPU than this (in cores) is flagged as unreliable.
BUSY_CORES = 0.1
# Such a case is timed again (--retries), after waiting for quiet (probing QUIET_PROBE_S at a time,
# at most --wait-quiet seconds over the whole run); the least disturbed attempt is kept.
QUIET_PROBE_S = 0.25
# A row around which the speed probe (SpeedProbe) ran this many times slower than the fastest probe
# of the run is treated like a busy one: timed again, and marked if that does not help.
SLOW_FACTOR = 1.2

Call = Callable[[], Any]


@dataclass
class Case:
    """One benchmark row: the two callables to time and what is needed to report them."""

    op: str
    family: str
    size: str
    dtype: str
    x_nbytes: int
    flops: float | None
    nnref_call: Call
    torch_call: Call
    # Returns the result pair (nnref, torch) for the agreement check.
    check_call: Callable[[], tuple[Any, Any]]
    # Peak-memory limit in multiples of x.nbytes, if a target applies.
    mem_limit: float | None = None


@dataclass
class Row:
    """Measured numbers of one case (what the table and the JSON show)."""

    op: str
    family: str
    size: str
    dtype: str
    shape: dict[str, int]
    nnref_ms: float
    torch_ms: float
    ratio: float
    nnref_gflops: float | None
    torch_gflops: float | None
    pct_gemm_peak: float | None
    nnref_peak_bytes: int
    x_nbytes: int
    mem_multiple: float
    mem_limit: float | None
    repeats: int
    calls_per_block: dict[str, int]
    samples_ms: dict[str, list[float]] = field(repr=False)
    max_rel_err: float
    agrees: bool
    # CPU used by other processes while this case was timed (cores), None if unknown.
    other_load: float | None
    # Reference workload time around this case (the slower of before and after), and that over
    # the fastest probe of the run (1.0: the machine ran at its best speed).
    probe_ms: float
    probe_slowdown: float
    attempts: int


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
    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "torch": torch.__version__,
        "impl": impl.__name__,
        "impl_version": getattr(impl, "__version__", None),
        "impl_file": getattr(impl, "__file__", None),
        "impl_git": git_state(getattr(impl, "__file__", None)),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_mkldnn": torch.backends.mkldnn.is_available(),
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
    x = torch.ones(8, 16, 32, 32)
    w = torch.ones(32, 16, 3, 3)

    def numpy_call() -> None:
        a @ a

    def torch_call() -> None:
        with torch.no_grad():
            F.conv2d(x, w, padding=1)

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
    at, bt = torch.from_numpy(a), torch.from_numpy(b)
    out_t = torch.empty(n, n, dtype=at.dtype)

    def numpy_mm() -> None:
        np.matmul(a, b, out=out)

    def torch_mm() -> None:
        torch.mm(at, bt, out=out_t)

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
# Cases


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value,)


def max_rel_err(ours: Any, theirs: Any) -> float:
    """Max |ours - theirs| / max |theirs| over matching outputs (tuples compared element-wise)."""
    worst = 0.0
    for o, t in zip(_as_tuple(ours), _as_tuple(theirs), strict=True):
        ref = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        got = np.asarray(o)
        if got.shape != ref.shape:
            return math.inf
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        diff = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
        worst = max(worst, diff / scale if scale > 0 else diff)
    return worst


def conv_cases(impl: ModuleType, size: str, dtype: str, rng: np.random.Generator) -> list[Case]:
    s = SIZES[size]
    n, c, h, w_, co, k, pad = (s[key] for key in ("N", "C", "H", "W", "Co", "k", "pad"))
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    w = (rng.standard_normal((co, c, k, k)) / math.sqrt(c * k * k)).astype(dtype)
    b = rng.standard_normal(co).astype(dtype)
    ho, wo = h + 2 * pad - k + 1, w_ + 2 * pad - k + 1
    dy = rng.standard_normal((n, co, ho, wo)).astype(dtype)
    fwd_flops = 2.0 * n * co * ho * wo * c * k * k  # groups = 1
    mem_limit = float(k * k + 2)

    xt, wt, bt, dyt = (torch.from_numpy(a) for a in (x, w, b, dy))
    xg, wg, bg = (t.detach().requires_grad_() for t in (xt, wt, bt))
    yg = F.conv2d(xg, wg, bg, padding=pad)  # graph kept for the backward-only timing

    def nnref_fwd() -> Any:
        return impl.conv2d(x, w, b, stride=1, padding=pad)

    def torch_fwd() -> Any:
        with torch.no_grad():
            return F.conv2d(xt, wt, bt, padding=pad)

    def nnref_bwd() -> Any:
        return impl.conv2d_backward(dy, x, w, stride=1, padding=pad)

    def torch_bwd() -> Any:
        return torch.autograd.grad(yg, (xg, wg, bg), dyt, retain_graph=True)

    def nnref_fwdbwd() -> Any:
        y = impl.conv2d(x, w, b, stride=1, padding=pad)
        return y, impl.conv2d_backward(dy, x, w, stride=1, padding=pad)

    def torch_fwdbwd() -> Any:
        y = F.conv2d(xg, wg, bg, padding=pad)
        return y, torch.autograd.grad(y, (xg, wg, bg), dyt)

    def check_fwdbwd() -> tuple[Any, Any]:
        y, grads = nnref_fwdbwd()
        yt, gradst = torch_fwdbwd()
        return (y, *grads), (yt, *gradst)

    common = {"family": "conv", "size": size, "dtype": dtype, "x_nbytes": x.nbytes}
    return [
        Case(
            "conv fwd",
            flops=fwd_flops,
            nnref_call=nnref_fwd,
            torch_call=torch_fwd,
            check_call=lambda: (nnref_fwd(), torch_fwd()),
            mem_limit=mem_limit,
            **common,
        ),
        Case(
            "conv bwd",
            flops=2 * fwd_flops,
            nnref_call=nnref_bwd,
            torch_call=torch_bwd,
            check_call=lambda: (nnref_bwd(), torch_bwd()),
            mem_limit=mem_limit,
            **common,
        ),
        Case(
            "conv fwd+bwd",
            flops=3 * fwd_flops,
            nnref_call=nnref_fwdbwd,
            torch_call=torch_fwdbwd,
            check_call=check_fwdbwd,
            **common,
        ),
    ]


def pool_cases(impl: ModuleType, size: str, dtype: str, rng: np.random.Generator) -> list[Case]:
    s = SIZES[size]
    x = rng.standard_normal((s["N"], s["C"], s["H"], s["W"])).astype(dtype)
    xt = torch.from_numpy(x)
    xg = xt.detach().requires_grad_()
    cases = []
    for label, k, stride, pad in POOLS:
        with torch.no_grad():
            out_shape = F.max_pool2d(xt, k, stride, pad).shape
        dy = rng.standard_normal(tuple(out_shape)).astype(dtype)
        dyt = torch.from_numpy(dy)

        def nnref_fwd(k: int = k, stride: int = stride, pad: int = pad) -> Any:
            return impl.max_pool2d(x, k, stride, pad)

        def torch_fwd(k: int = k, stride: int = stride, pad: int = pad) -> Any:
            with torch.no_grad():
                return F.max_pool2d(xt, k, stride, pad)

        def nnref_fwdbwd(
            k: int = k, stride: int = stride, pad: int = pad, dy: np.ndarray = dy
        ) -> Any:
            y = impl.max_pool2d(x, k, stride, pad)
            return y, impl.max_pool2d_backward(dy, x, k, stride, pad)

        def torch_fwdbwd(
            k: int = k, stride: int = stride, pad: int = pad, dyt: torch.Tensor = dyt
        ) -> Any:
            y = F.max_pool2d(xg, k, stride, pad)
            return y, *torch.autograd.grad(y, xg, dyt)

        def check_fwdbwd(fn_n: Call = nnref_fwdbwd, fn_t: Call = torch_fwdbwd) -> tuple[Any, Any]:
            return fn_n(), fn_t()

        def check_fwd(fn_n: Call = nnref_fwd, fn_t: Call = torch_fwd) -> tuple[Any, Any]:
            return fn_n(), fn_t()

        common = {
            "family": "pool",
            "size": size,
            "dtype": dtype,
            "x_nbytes": x.nbytes,
            "flops": None,
        }
        cases.append(
            Case(
                f"{label} fwd",
                nnref_call=nnref_fwd,
                torch_call=torch_fwd,
                check_call=check_fwd,
                **common,
            )
        )
        cases.append(
            Case(
                f"{label} fwd+bwd",
                nnref_call=nnref_fwdbwd,
                torch_call=torch_fwdbwd,
                check_call=check_fwdbwd,
                **common,
            )
        )
    return cases


def bn_cases(impl: ModuleType, size: str, dtype: str, rng: np.random.Generator) -> list[Case]:
    s = SIZES[size]
    c = s["C"]
    x = (3.0 + 2.0 * rng.standard_normal((s["N"], c, s["H"], s["W"]))).astype(dtype)
    gamma = (1.0 + 0.1 * rng.standard_normal(c)).astype(dtype)
    beta = (0.1 * rng.standard_normal(c)).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    eps = 1e-5
    xt, gt, bt, dyt = (torch.from_numpy(a) for a in (x, gamma, beta, dy))
    xg, gg, bg = (t.detach().requires_grad_() for t in (xt, gt, bt))

    def nnref_fwd() -> Any:
        return impl.batch_norm(x, gamma, beta, training=True, eps=eps)

    def torch_fwd() -> Any:
        with torch.no_grad():
            return F.batch_norm(xt, None, None, gt, bt, training=True, eps=eps)

    def nnref_fwdbwd() -> Any:
        y = impl.batch_norm(x, gamma, beta, training=True, eps=eps)
        return y, *impl.batch_norm_backward(dy, x, gamma, eps=eps, training=True)

    def torch_fwdbwd() -> Any:
        y = F.batch_norm(xg, None, None, gg, bg, training=True, eps=eps)
        return y, *torch.autograd.grad(y, (xg, gg, bg), dyt)

    common = {"family": "bn", "size": size, "dtype": dtype, "x_nbytes": x.nbytes, "flops": None}
    return [
        Case(
            "batchnorm fwd",
            nnref_call=nnref_fwd,
            torch_call=torch_fwd,
            check_call=lambda: (nnref_fwd(), torch_fwd()),
            **common,
        ),
        Case(
            "batchnorm fwd+bwd",
            nnref_call=nnref_fwdbwd,
            torch_call=torch_fwdbwd,
            check_call=lambda: (nnref_fwdbwd(), torch_fwdbwd()),
            **common,
        ),
    ]


BUILDERS: dict[str, Callable[[ModuleType, str, str, np.random.Generator], list[Case]]] = {
    "conv": conv_cases,
    "pool": pool_cases,
    "bn": bn_cases,
}


def run_case(
    case: Case,
    repeats: int | None,
    pauses: Pauses,
    peak_gflops: float,
    retries: int,
    waiter: QuietWaiter,
    probe: SpeedProbe,
) -> Row:
    ours, theirs = case.check_call()
    err = max_rel_err(ours, theirs)
    del ours, theirs
    # (badness, other load, probe seconds, timings) of the least disturbed attempt
    best: tuple[float, float, float, tuple[list[float], list[float], int, int]] | None = None
    attempts = 0
    while attempts <= retries:
        attempts += 1
        waiter.wait()
        before = probe.measure()
        with OtherLoad() as load:
            timed = time_pair(case.nnref_call, case.torch_call, repeats, pauses)
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
    peak_bytes = peak_memory(case.nnref_call)
    nnref_gflops = case.flops / nnref_s / 1e9 if case.flops else None
    torch_gflops = case.flops / torch_s / 1e9 if case.flops else None
    return Row(
        op=case.op,
        family=case.family,
        size=case.size,
        dtype=case.dtype,
        shape=dict(SIZES[case.size]),
        nnref_ms=nnref_s * 1e3,
        torch_ms=torch_s * 1e3,
        ratio=nnref_s / torch_s,
        nnref_gflops=nnref_gflops,
        torch_gflops=torch_gflops,
        pct_gemm_peak=100.0 * nnref_gflops / peak_gflops if nnref_gflops else None,
        nnref_peak_bytes=peak_bytes,
        x_nbytes=case.x_nbytes,
        mem_multiple=peak_bytes / case.x_nbytes,
        mem_limit=case.mem_limit,
        repeats=len(samples_n),
        calls_per_block={"nnref": calls_n, "torch": calls_t},
        samples_ms={"nnref": [t * 1e3 for t in samples_n], "torch": [t * 1e3 for t in samples_t]},
        max_rel_err=err,
        agrees=err <= CHECK_TOL[case.dtype],
        other_load=None if math.isinf(other_load) else other_load,
        probe_ms=probe_s * 1e3,
        probe_slowdown=probe_s / probe.best_s,  # final value set once the run's best is known
        attempts=attempts,
    )


# --------------------------------------------------------------------------------------------
# Targets and reporting


def check_targets(rows: Sequence[Row]) -> list[TargetCheck]:
    checks: list[TargetCheck] = []

    def add(target: str, row: Row, value: float, limit: float, unit: str, at_most: bool) -> None:
        met = value <= limit if at_most else value >= limit
        case = f"{row.op} {row.size} {row.dtype}"
        checks.append(TargetCheck(target, case, value, limit, unit, met))

    for row in rows:
        if row.op == "conv fwd+bwd" and row.size in ("medium", "large"):
            limit = 1.3 if row.dtype == "float32" else 1.0
            add("conv fwd+bwd time / torch", row, row.ratio, limit, "x", at_most=True)
        if row.op == "conv fwd" and row.size == "large" and row.pct_gemm_peak is not None:
            add(
                "large conv fwd, % of NumPy GEMM peak",
                row,
                row.pct_gemm_peak,
                60.0,
                "%",
                at_most=False,
            )
        if row.family in ("pool", "bn") and row.op.endswith("fwd+bwd"):
            add(f"{row.family} fwd+bwd time / torch", row, row.ratio, 1.5, "x", at_most=True)
        if row.size == "small":
            add("small shapes: time per call / torch", row, row.ratio, 1.0, "x", at_most=True)
        if row.mem_limit is not None:
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


TABLE_HEADER = (
    f"{'op':<24} {'size':<7} {'dtype':<8} {'nnref ms':>10} {'torch ms':>10} {'ratio':>6} "
    f"{'GFLOP/s':>8} {'torch GF/s':>10} {'%peak':>6} {'mem/x':>6} {'reps':>5} {'other':>5} "
    f"{'probe':>5}"
)


def disturbed(r: Row) -> bool:
    return r.other_load is None or r.other_load > BUSY_CORES or r.probe_slowdown > SLOW_FACTOR


def format_row(r: Row) -> str:
    notes = []
    if disturbed(r):
        notes.append("*")
    if not r.agrees:
        notes.append(f"! differs from torch (max rel err {r.max_rel_err:.1e})")
    return (
        f"{r.op:<24} {r.size:<7} {r.dtype:<8} {r.nnref_ms:>10.3f} {r.torch_ms:>10.3f} "
        f"{r.ratio:>6.2f} {_fmt(r.nnref_gflops, '8.1f'):>8} "
        f"{_fmt(r.torch_gflops, '10.1f'):>10} {_fmt(r.pct_gemm_peak, '6.1f'):>6} "
        f"{r.mem_multiple:>6.2f} {r.repeats:>5} {_fmt(r.other_load, '5.2f'):>5} "
        f"{r.probe_slowdown:>5.2f} " + " ".join(notes)
    ).rstrip()


def print_table(rows: Sequence[Row]) -> None:
    print(TABLE_HEADER)
    print("-" * len(TABLE_HEADER))
    for r in rows:
        print(format_row(r))
    if any(disturbed(r) for r in rows):
        print(
            f"* other processes used more than {BUSY_CORES} cores on average while this row was "
            f"timed (or it could not be told), or the machine ran more than {SLOW_FACTOR}x slower "
            "than at start-up (probe): its times are unreliable"
        )


def print_targets(checks: Sequence[TargetCheck]) -> None:
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


def parse_list(text: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in items if item not in allowed]
    if unknown or not items:
        raise argparse.ArgumentTypeError(
            f"{what} must be a comma-separated subset of {','.join(allowed)}, got {text!r}"
        )
    return items


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(SIZES),
        type=lambda t: parse_list(t, tuple(SIZES), "--sizes"),
        help=f"comma-separated subset of {','.join(SIZES)} (default: all)",
    )
    parser.add_argument(
        "--dtypes",
        default=",".join(DTYPES),
        type=lambda t: parse_list(t, DTYPES, "--dtypes"),
        help=f"comma-separated subset of {','.join(DTYPES)} (default: both)",
    )
    parser.add_argument(
        "--ops",
        default=",".join(OPS),
        type=lambda t: parse_list(t, OPS, "--ops"),
        help=f"comma-separated subset of {','.join(OPS)} (default: all)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed blocks per side and case (default: adaptive, ~1.5 s per case, 3 to 25)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write all numbers here")
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

    torch.set_num_threads(THREADS)
    impl = import_impl(args.impl)
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
    # NumPy's GEMM peak, measured before and after the cases; %peak uses the better one.
    peak_runs: dict[str, list[dict[str, Any]]] = {}
    for dtype in args.dtypes:
        waiter.wait()
        peak_runs[dtype] = [gemm_peak(dtype, pauses)]
    peaks = {dtype: best_peak(runs) for dtype, runs in peak_runs.items()}

    rng = np.random.default_rng(20240607)
    rows: list[Row] = []
    start = time.perf_counter()
    print(TABLE_HEADER, file=sys.stderr)
    for size in args.sizes:
        for dtype in args.dtypes:
            for op in args.ops:
                for case in BUILDERS[op](impl, size, dtype, rng):
                    peak = peaks[dtype]["numpy_gflops"]
                    rows.append(
                        run_case(case, args.repeats, pauses, peak, args.retries, waiter, probe)
                    )
                    print(format_row(rows[-1]), file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start
    for dtype in args.dtypes:
        waiter.wait()
        peak_runs[dtype].append(gemm_peak(dtype, pauses))
    peaks = {dtype: best_peak(runs) for dtype, runs in peak_runs.items()}
    for row in rows:
        row.probe_slowdown = row.probe_ms / (probe.best_s * 1e3)
        if row.nnref_gflops is not None:
            row.pct_gemm_peak = 100.0 * row.nnref_gflops / peaks[row.dtype]["numpy_gflops"]

    print()
    for dtype, p in peaks.items():
        runs = ", ".join(f"{r['numpy_gflops']:.1f}" for r in p["runs"])
        print(
            f"GEMM peak {dtype} (n={p['n']}): NumPy {p['numpy_gflops']:.1f} GFLOP/s "
            f"(runs: {runs}), torch {p['torch_gflops']:.1f} GFLOP/s"
        )
    print()
    print_table(rows)
    checks = check_targets(rows)
    print_targets(checks)
    print(f"(benchmark time {elapsed:.0f} s, {waiter.waited_s:.0f} s of it waiting for quiet)")

    if args.json is not None:
        payload = {
            "environment": env,
            "settings": {
                "threads": THREADS,
                "sizes": {s: SIZES[s] for s in args.sizes},
                "dtypes": args.dtypes,
                "ops": args.ops,
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
