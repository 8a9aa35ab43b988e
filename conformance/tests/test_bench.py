"""The benchmark (``benchmarks/bench.py``) runs beside each peer and counts what it reports.

Timings are not asserted (the benchmark measures); what is: every peer of the backend registry
that has a bench module runs a memory-bound and a matrix op's smallest bench case, agrees with
nnref within the error model, and the numbers behind the limits are the documented ones (the
bytes a call moves, the flops of a GEMM), with n/a reasons where a peer has no gradient. Each
peer's test carries its backend's marker, so it runs in that framework's tox environment.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ..backends import BACKENDS
from ..frameworks import require
from ..ops import record
from ..paths import checkout_root

PEERS = [b for b in BACKENDS if b.bench]


def _bench(peer: str, tmp_path) -> dict:
    root = checkout_root()
    if root is None or not (root / "benchmarks" / "bench.py").is_file():
        pytest.skip("benchmarks/bench.py is in a source checkout only")
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "bench.py"), "--peers", peer,
         "--sizes", "small", "--ops", "relu,linear", "--dtypes", "float32",
         "--directions", "fwd,bwd", "--repeats", "1", "--retries", "0", "--wait-quiet", "0",
         "--json", str(out)],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("peer", [pytest.param(b.name, marks=getattr(pytest.mark, b.marker),
                                               id=b.name) for b in PEERS])
def test_the_bench_times_nnref_beside_each_peer_and_counts_its_limits(peer, tmp_path):
    require(next(b for b in PEERS if b.name == peer).package)
    doc = _bench(peer, tmp_path)
    assert doc["settings"]["peers"] == [peer]
    rows = {(r["family"], r["direction"]): r for r in doc["rows"]}
    assert set(rows) == {(f, d) for f in ("relu", "linear") for d in ("fwd", "bwd")}
    for (family, direction), row in rows.items():
        assert row["status"] == "ok" and row["agrees"], row
        assert row["nnref_ms"] > 0 and row["nnref_peak_bytes"] > 0
        case = next(b.case for b in record(family).bench if b.size == "small")
        x = case.arrays(np.dtype(np.float32), 0)["x"]
        if peer in row["peer_ms"]:
            assert row["peer_ms"][peer] > 0 and peer in row["pct_limit"]
        else:  # only onnxruntime lacks gradients; the reason names the registry id
            assert direction == "bwd" and "onnx-no-autodiff" in row["peer_status"][peer]
        if family == "relu":  # memory-bound: x (and dy) read, y (dx) written, once each
            assert row["limit"] == "traffic"
            assert row["io_bytes"] == x.nbytes * (2 if direction == "fwd" else 3)
            # XLA's buffer assignment holds the output at least; torch and onnxruntime tell none
            assert row["peer_peak_bytes"].get(peer, x.nbytes) >= x.nbytes
            assert (peer in row["peer_peak_bytes"]) == (peer == "jax" and peer in row["peer_ms"])
        else:  # a matrix op: 2 * rows * in * out per GEMM, forward one, backward two
            assert row["limit"] == "gemm"
            flops = 2 * np.prod(case.lead) * case.in_features * case.out_features
            gemms = 1 if direction == "fwd" else 2
            assert row["nnref_gflops"] == pytest.approx(gemms * flops / row["nnref_ms"] / 1e6)
    bandwidth = doc["copy_bandwidth"]
    assert bandwidth["gbps"] == max(bandwidth["all_gbps"].values()) > 0
    assert doc["gemm_peak"]["float32"]["numpy_gflops"] > 0
