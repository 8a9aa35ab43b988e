"""Forward cross-check of an ONNX adapter against nnref, counted per op (issue_notes/xcheck.py,
both directions: nnref judged against the adapter and the adapter against nnref).

    PYTHONPATH=impl:. python notes/onnx_xcheck.py conformance.backends.onnxruntime_backend 30

Prints per-op counts (ok, Unsupported per id, FAIL) as JSON and the adapter's own speed: its
forward calls alone, the first call (model built, session created; timed before the checks)
and a repeat (cached), in examples per second.
"""

import collections
import importlib
import json
import sys
import time

import nnref
import numpy as np

from conformance import sampler
from conformance.backends import Unsupported
from conformance.harness import check_against_reference
from conformance.ops import RECORDS

B = importlib.import_module(sys.argv[1])
n = int(sys.argv[2])
per_op: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
timing = {"first": [0, 0.0], "cached": [0, 0.0]}
for rec in RECORDS:
    for rank in rec.ranks:
        label = rec.label(rank)
        for case, seed in sampler.sample(rec, n, 0 + rank, rank=rank):
            for dt in (np.float32, np.float64):
                a = case.arrays(dt, seed)
                for which in ("first", "cached"):
                    t0 = time.perf_counter()
                    try:
                        case.forward(B, a)
                    except Exception:
                        continue
                    timing[which][0] += 1
                    timing[which][1] += time.perf_counter() - t0
                for impl, ref, nm in ((nnref, B, "nnref"), (B, nnref, B.__name__)):
                    judged = "B-vs-nnref" if impl is B else "nnref-vs-B"
                    key = f"{label} {np.dtype(dt).name} {judged}"
                    try:
                        check_against_reference(case, impl, ref, dt, seed, nm, "forward")
                        per_op[key]["ok"] += 1
                    except Unsupported as e:
                        per_op[key][e.divergence_id] += 1
                    except Exception as e:
                        per_op[key]["FAIL"] += 1
                        print("FAIL", key, case.describe(), type(e).__name__, str(e)[:300],
                              file=sys.stderr)
total = collections.Counter()
for c in per_op.values():
    total.update(c)
print(json.dumps({"per_op": {k: dict(v) for k, v in sorted(per_op.items())},
                  "total": dict(total),
                  "examples_per_second": {k: round(v[0] / v[1], 1) for k, v in timing.items()},
                  "examples": {k: v[0] for k, v in timing.items()}}, indent=1))
