"""Golden fixtures: the stored case list, and generating a fixtures directory.

Cases are explicit: every op record's hand-computed cases and stored generated cases
(``conformance/ops/<op>.py``), each in float32 and float64; and, in float16 and bfloat16, the
first stored generated case of every op at every rank, its x shaped by one of the low-precision
value regimes (``low_precision.VALUE_REGIMES``, chosen by the case's seed) before its float32
arrays are rounded to the format. Generation runs nnref in float64 and every framework in the case
dtype on the case's inputs, refuses a framework output beyond tolerance (unless a registered
divergence expects it), and writes the directory in the format of ``conformance.fixture_store``
(staged, then swapped in).

Tolerances (all from conformance/tolerance.py, elementwise, recomputed from the stored inputs):

- generation: a framework (in the case dtype) against nnref in float64 on the same values,
  ``comparison_atol(bound(dtype), bound(float64))``; its largest element is the manifest's
  ``tolerance`` entry;
- tests: a live implementation or framework (in the case dtype) against a stored output in the
  same dtype, ``comparison_atol(bound(dtype), bound(dtype))``: both sides err by their bound.
- float16 / bfloat16: nnref (float32 accumulation) and each framework (the arithmetic its table
  declares per function and format) against nnref in float64 on the stored inputs, within
  ``low_precision.allowed`` of that arithmetic; a framework whose backend has no such dtype
  (SciPy) is recorded as ``dtype-unsupported``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import numpy as np

from . import low_precision as lp
from . import ops, registry
from . import tolerance as tol
from .backend_registry import backend as backend_row
from .backends import Unsupported, load_backend
from .cases import Case
from .comparison import Mismatch, compare
from .fixture_store import (
    ABSENT,
    BUDGET_BYTES,
    DATA_DIR,
    DIRECTIONS,
    DTYPES,
    FIXTURES_DIR,
    FORMAT,
    FRAMEWORKS,
    GENERATOR,
    GENERATOR_VERSION,
    LOW_PRECISION,
    MANIFEST_NAME,
    NO_DTYPE,
    README_NAME,
    SUFFIX,
    FixtureError,
    case_dtype,
    jsonable,
    manifest_bytes,
    npz_bytes,
    seed_for,
    sha256,
    verify,
)
from .ops import HandCase
from .runner import run_pass

# --------------------------------------------------------------------------------------------
# the case list


@dataclass(frozen=True)
class FixtureCase:
    """One stored case: a named Case in one dtype, generated from a seed or given by hand.

    ``differs`` maps a framework to a registered divergence id whose output is *expected* to
    differ from nnref beyond tolerance on this case: it is then stored and recorded, not refused.
    """

    name: str
    case: Case
    dtype: str
    seed: int | None = None
    hand: HandCase | None = None
    differs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # float16 / bfloat16: how x is shaped before rounding (low_precision.shaped)
    values: tuple[str, float] | None = None

    @property
    def kind(self) -> str:
        return "generated" if self.hand is None else "hand"

    @property
    def low_precision(self) -> bool:
        return self.dtype in LOW_PRECISION

    def arrays(self) -> dict[str, np.ndarray]:
        """The case's inputs (and upstream gradient ``dy``) in its dtype: in float16 / bfloat16,
        its float32 arrays shaped by its value regime, then rounded to the format."""
        if self.hand is not None:
            return self.hand.arrays(np.dtype(self.dtype))
        assert self.seed is not None
        if self.values is not None:
            a32 = lp.shaped(self.case.arrays(np.float32, self.seed), *self.values)
            return lp.rounded_inputs(a32, case_dtype(self.dtype))[0]
        return self.case.arrays(np.dtype(self.dtype), self.seed)


# Framework outputs expected to differ from nnref beyond tolerance on a named case, each with
# the registered divergence that explains it: {case name: {framework: divergence id}}.
# Every framework agrees on every case today; an entry here is recorded in the manifest.
EXPECTED_DIFFERENCES: Mapping[str, Mapping[str, str]] = MappingProxyType({})


def check_unique_names(names: Iterable[str]) -> None:
    """Raise ValueError naming every case name that occurs more than once."""
    dup = sorted(n for n, k in Counter(names).items() if k > 1)
    if dup:
        raise ValueError(f"duplicate fixture case name(s): {dup}")


def value_regime(seed: int) -> tuple[str, float]:
    """The low-precision value regime of a float16 / bfloat16 case, from its seed
    (``low_precision.cycled_values``): every regime and offset occurs across the cases, and a
    case keeps its regime when others are added."""
    return lp.cycled_values(seed)


def first_per_rank(generated: Iterable[tuple[str, Case]]) -> list[tuple[str, Case]]:
    """The first generated case of every op at every rank, in its record's order (where each
    record lists its representative cases first): the float16 / bfloat16 list."""
    seen: dict[tuple[str, int], tuple[str, Case]] = {}
    for base, case in generated:
        seen.setdefault((case.record.name, case.rank), (base, case))
    return list(seen.values())


def build_cases(hand: Iterable[HandCase], generated: Iterable[tuple[str, Case]],
                differences: Mapping[str, Mapping[str, str]] | None = None) -> list[FixtureCase]:
    """Every (case, dtype) as a FixtureCase, sorted by name; duplicate names are an error.
    float32 / float64: every hand and generated case; float16 / bfloat16: the first generated
    case of every op and rank (:func:`first_per_rank`), with its value regime."""
    differences = differences or {}
    hand, generated = tuple(hand), tuple(generated)
    out: list[FixtureCase] = []
    for dtype in DTYPES:
        low = dtype in LOW_PRECISION
        for hc in () if low else hand:
            name = f"hand-{hc.name}-{SUFFIX[dtype]}"
            out.append(FixtureCase(name, hc.case, dtype, None, hc,
                                   MappingProxyType(dict(differences.get(name, {})))))
        for base, case in first_per_rank(generated) if low else generated:
            name = f"{base}-{SUFFIX[dtype]}"
            seed = seed_for(name)
            out.append(FixtureCase(name, case, dtype, seed, None,
                                   MappingProxyType(dict(differences.get(name, {}))),
                                   value_regime(seed) if low else None))
    check_unique_names(c.name for c in out)
    bad = sorted(set(differences) - {c.name for c in out})
    if bad:
        raise ValueError(f"expected differences for unknown case(s): {bad}")
    for c in out:
        for fw, ident in c.differs.items():
            if fw not in FRAMEWORKS or ident not in registry.ids():
                raise ValueError(f"{c.name}: {fw!r} -> {ident!r} is not a framework and a "
                                 "registered divergence id")
    return sorted(out, key=lambda c: c.name)


def fixture_cases() -> list[FixtureCase]:
    """The stored case list: every hand case and every generated case, in both dtypes."""
    return build_cases(ops.hand_cases(), ops.fixture_cases(), EXPECTED_DIFFERENCES)


# --------------------------------------------------------------------------------------------
# running a case


def _upcast(a: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=np.float64) for k, v in a.items()}


def bounds(case: Case, a: Mapping[str, np.ndarray], dtype: Any, direction: str) -> dict[str, Any]:
    """Error bound of each output of one implementation in ``dtype`` (tolerance module)."""
    fn = tol.forward_bounds if direction == "forward" else tol.backward_bounds
    return fn(case, _upcast(a), dtype)


def atols(case: Case, a: Mapping[str, np.ndarray], dtype: Any, reference_dtype: Any,
          direction: str) -> dict[str, Any]:
    """Elementwise allowed |x(dtype) - reference(reference_dtype)| per output."""
    b, r = bounds(case, a, dtype, direction), bounds(case, a, reference_dtype, direction)
    return {k: tol.comparison_atol(b[k], r[k]) for k in b}


def run_outputs(case: Case, backend: ModuleType, a: Mapping[str, np.ndarray], direction: str,
                names: Iterable[str]) -> dict[str, np.ndarray | Unsupported]:
    """Each named output of ``backend`` on ``a``, or the Unsupported it raised instead (the
    suite's runner: a forward refused for its optional outputs is rerun without them)."""
    names = tuple(names)
    outcome = run_pass(backend, case, a, direction)
    if outcome.error:
        raise RuntimeError(f"{case.op} {direction}: {outcome.error}")
    got: dict[str, np.ndarray | Unsupported] = dict(outcome.outputs)
    for n, ident in outcome.registered.items():
        for name in (names if n == "*" else (n,)):
            got[name] = Unsupported(ident)
    if set(got) != set(names):
        raise ValueError(f"{case.op} {direction}: outputs {sorted(got)}, expected {sorted(names)}")
    return got


def _check_dtype(name: str, value: np.ndarray, dtype: np.dtype) -> None:
    want = np.dtype(np.int64) if name == "indices" else dtype
    if np.asarray(value).dtype != want:
        raise Mismatch(f"{name}: dtype {np.asarray(value).dtype}, expected {want}")


# --------------------------------------------------------------------------------------------
# generation


@dataclass
class Generated:
    """One generated case: its manifest entry (without checksum) and its arrays."""

    entry: dict[str, Any]
    arrays: dict[str, np.ndarray]


@dataclass(frozen=True)
class Disagreement:
    """A case that cannot be written: which backend and output disagreed, and how."""

    case: str
    backend: str
    direction: str
    output: str
    message: str

    def __str__(self) -> str:
        first = self.message.splitlines()[0] if self.message else ""
        return f"{self.case}: {self.backend} {self.direction} {self.output}: {first}"


def _headroom(value: float) -> float:
    return float(f"{value:.3g}")


def _registered(fc: FixtureCase, framework: str, direction: str, name: str,
                value: Unsupported, problems: list[Disagreement]) -> dict[str, Any]:
    """The manifest status of an output the framework's backend refused (``Unsupported``); an id
    missing from the registry is a disagreement."""
    if value.divergence_id not in registry.ids():
        problems.append(Disagreement(
            fc.name, framework, direction, name,
            f"Unsupported({value.divergence_id!r}) is not in divergences.toml"))
    return {"status": "divergence", "divergence": value.divergence_id}


def _low_precision_direction(fc: FixtureCase, backends: Mapping[str, ModuleType | None],
                             a: Mapping[str, np.ndarray], direction: str,
                             reference: Mapping[str, np.ndarray], data: dict[str, np.ndarray],
                             results: dict[str, dict[str, dict[str, Any]]],
                             problems: list[Disagreement]) -> dict[str, float]:
    """One direction of a float16 / bfloat16 case: nnref and every framework in the format,
    each judged against the float64 ``reference`` within the bound of its declared arithmetic
    (nnref: float32 accumulation); stores the outputs and the reference. Returns the manifest's
    tolerance (nnref's largest allowed error per output)."""
    storage = case_dtype(fc.dtype)
    a64 = _upcast(a)
    function = fc.case.op if direction == "forward" else fc.case.backward_op
    names = sorted(reference)

    def judged(backend: str, module: Any, name: str, value: Any) -> float | None:
        arithmetic = lp.Arithmetic(storage, lp.declared_accumulation(module, function, storage)
                                   or "float32")
        try:
            _check_dtype(name, value, storage)
            return lp.judge(fc.case, {name: value}, {name: reference[name]}, a64, direction,
                            arithmetic, fc.name).get(name, 0.0)
        except Mismatch as exc:
            problems.append(Disagreement(fc.name, backend, direction, name, str(exc)))
            return None

    nnref = backends["nnref"]
    own = (fc.case.forward if direction == "forward" else fc.case.backward)(nnref, dict(a))
    for n in names:
        judged("nnref", nnref, n, own[n])
        data[f"nnref/{direction}/{n}"] = own[n]
        if n != "indices":
            data[f"reference/{direction}/{n}"] = np.asarray(reference[n], np.float64)
    for fw in FRAMEWORKS:
        module = backends.get(fw)
        res = results[fw][direction] = {}
        if module is None:
            res.update({n: {"status": ABSENT} for n in names})
            continue
        if fc.dtype not in backend_row(fw).storage_formats:
            res.update({n: {"status": NO_DTYPE} for n in names})
            continue
        live = run_outputs(fc.case, module, dict(a), direction, names)
        for n in names:
            value = live[n]
            if isinstance(value, Unsupported):
                res[n] = _registered(fc, fw, direction, n, value, problems)
                continue
            h = judged(fw, module, n, value)
            if h is not None:
                key = f"{fw}/{direction}/{n}"
                res[n] = {"status": "agrees", "array": key, "headroom": _headroom(h)}
                data[key] = np.asarray(value)
    limits = lp.allowed(fc.case, a64, direction, lp.Arithmetic(storage), reference)
    # the largest finite allowance (a window over no input cell is -inf, allowed inf)
    return {n: float(np.max(limits[n], where=np.isfinite(limits[n]), initial=0.0))
            if n in limits else 0.0 for n in names}


def generate_case(fc: FixtureCase, backends: Mapping[str, ModuleType | None],
                  versions: Mapping[str, str]) -> Generated | list[Disagreement]:
    """Run nnref and every framework on one case; its entry and arrays, or why it is refused."""
    dtype = case_dtype(fc.dtype)
    a = fc.arrays()
    a64 = _upcast(a)
    nnref = backends["nnref"]
    assert nnref is not None
    data: dict[str, np.ndarray] = {f"inputs/{k}": v for k, v in a.items()}
    problems: list[Disagreement] = []
    outputs: dict[str, list[str]] = {}
    tolerance: dict[str, dict[str, float]] = {}
    results: dict[str, dict[str, dict[str, Any]]] = {fw: {} for fw in FRAMEWORKS}

    for direction in DIRECTIONS:
        run = fc.case.forward if direction == "forward" else fc.case.backward
        reference = run(nnref, a64)
        names = sorted(reference)
        outputs[direction] = names
        if fc.low_precision:
            tolerance[direction] = _low_precision_direction(fc, backends, a, direction,
                                                            reference, data, results, problems)
            continue
        atol = atols(fc.case, a, dtype, np.float64, direction)
        tolerance[direction] = {n: float(np.max(atol[n])) for n in names}

        def check(backend: str, name: str, value: Any, want: Any, direction: str = direction,
                  atol: dict[str, Any] = atol) -> float | None:
            try:
                _check_dtype(name, value, dtype)
                return compare(name, value, want, atol[name], fc.name)
            except Mismatch as exc:
                problems.append(Disagreement(fc.name, backend, direction, name, str(exc)))
                return None

        own = run(nnref, a)
        for n in names:
            check("nnref", n, own[n], reference[n])
            data[f"nnref/{direction}/{n}"] = own[n]
        if fc.hand is not None:
            expected = fc.hand.expected(direction)
            if sorted(expected) != names:
                problems.append(Disagreement(fc.name, "expected", direction, ",".join(expected),
                                             f"hand outputs {sorted(expected)} != {names}"))
            for n in sorted(set(expected) & set(names)):
                check("nnref (hand numbers)", n, own[n], expected[n])
                data[f"expected/{direction}/{n}"] = expected[n]

        for fw in FRAMEWORKS:
            backend = backends.get(fw)
            res = results[fw][direction] = {}
            if backend is None:
                res.update({n: {"status": ABSENT} for n in names})
                continue
            live = run_outputs(fc.case, backend, a, direction, names)
            for n in names:
                value = live[n]
                if isinstance(value, Unsupported):
                    res[n] = _registered(fc, fw, direction, n, value, problems)
                    continue
                key = f"{fw}/{direction}/{n}"
                declared = fc.differs.get(fw)
                if declared is not None:
                    try:
                        _check_dtype(n, value, dtype)
                        h = compare(n, value, reference[n], atol[n], fc.name)
                        res[n] = {"status": "agrees", "array": key, "headroom": _headroom(h)}
                    except Mismatch:
                        res[n] = {"status": "divergence", "divergence": declared, "array": key}
                    data[key] = np.asarray(value)
                    continue
                h = check(fw, n, value, reference[n])
                if h is not None:
                    res[n] = {"status": "agrees", "array": key, "headroom": _headroom(h)}
                    data[key] = np.asarray(value)

    if problems:
        return problems
    entry: dict[str, Any] = {
        "name": fc.name,
        "kind": fc.kind,
        "hand_case": None if fc.hand is None else fc.hand.name,
        "op": fc.case.op,
        "case": jsonable(fc.case.to_dict()),
        "params": jsonable(fc.case.params()),
        "dtype": fc.dtype,
        "seed": fc.seed,
        "values": None if fc.values is None else {"regime": fc.values[0],
                                                  "amount": fc.values[1]},
        "arrays": {k: {"dtype": _stored_dtype(v), "shape": list(np.shape(v))}
                   for k, v in sorted(data.items())},
        "tolerance": tolerance,
        "outputs": outputs,
        "results": results,
        "file": f"{DATA_DIR}/{fc.name}.npz",
        "versions": dict(versions),
    }
    return Generated(entry, data)


def _stored_dtype(value: Any) -> str:
    """The dtype an array has in its .npy (bfloat16 is stored as its uint16 bits)."""
    name = np.asarray(value).dtype.name
    return "uint16" if name == "bfloat16" else name


def build_manifest(cases: Iterable[Generated], versions: Mapping[str, str]
                   ) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and the data files (relative path -> bytes) for generated cases."""
    files: dict[str, bytes] = {}
    entries = []
    for g in sorted(cases, key=lambda g: g.entry["name"]):
        content = npz_bytes(g.arrays)
        entry = dict(g.entry, sha256=sha256(content), bytes=len(content))
        files[entry["file"]] = content
        entries.append(entry)
    check_unique_names(e["name"] for e in entries)
    manifest = {"format": FORMAT, "generator": {"name": GENERATOR, "version": GENERATOR_VERSION},
                "versions": dict(versions), "cases": entries}
    return manifest, files


def write_tree(directory: Path, manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> None:
    """Write the manifest and data files into an (empty or new) directory."""
    (directory / DATA_DIR).mkdir(parents=True, exist_ok=True)
    for rel, content in sorted(files.items()):
        (directory / rel).write_bytes(content)
    (directory / MANIFEST_NAME).write_bytes(manifest_bytes(manifest))


def replace_directory(staging: Path, out: Path) -> None:
    """Move a finished staging directory to ``out``, replacing what was there.

    Both live in the same parent, so each step is a rename: the old directory is moved aside,
    the new one moved in, and the old one deleted only after that (restored on failure).
    """
    if not out.exists():
        os.replace(staging, out)
        return
    backup = out.with_name(f".{out.name}.old-{os.getpid()}")
    if backup.exists():
        shutil.rmtree(backup)
    os.replace(out, backup)
    try:
        os.replace(staging, out)
    except BaseException:
        os.replace(backup, out)
        raise
    shutil.rmtree(backup)


# --------------------------------------------------------------------------------------------
# regeneration


def load_backends() -> tuple[dict[str, ModuleType | None], list[str]]:
    """nnref and every framework adapter; missing frameworks as None (and listed)."""
    out: dict[str, ModuleType | None] = {"nnref": load_backend("nnref")}
    missing = []
    for fw in FRAMEWORKS:
        try:
            out[fw] = load_backend(fw)
        except ImportError:
            out[fw] = None
            missing.append(fw)
    return out, missing


def single_threaded(backends: Mapping[str, ModuleType | None]) -> None:
    """One thread per framework: summation order must not depend on the machine's core count."""
    if backends.get("torch") is not None:
        importlib.import_module("torch").set_num_threads(1)
    if backends.get("tensorflow") is not None:
        tf = importlib.import_module("tensorflow")
        try:
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # TF already initialised in this process: keep its setting
            pass


def collect_versions(backends: Mapping[str, ModuleType | None]) -> dict[str, str]:
    """Versions of NumPy, SciPy, torch, TF, nnref and the generator ("absent" if missing)."""

    def module_version(module: str, backend: str) -> str:
        if backends.get(backend) is None:
            return ABSENT
        try:
            return str(importlib.import_module(module).__version__)
        except ImportError:  # a stand-in backend (tests) for a framework that is not installed
            return "unknown"

    try:
        nnref_version = importlib.metadata.version("nnref")
    except importlib.metadata.PackageNotFoundError:
        nnref_version = str(getattr(backends["nnref"], "__version__", "unknown"))
    return {
        "generator": GENERATOR_VERSION,
        "nnref": nnref_version,
        "numpy": np.__version__,
        "scipy": module_version("scipy", "scipy"),
        "tensorflow": module_version("tensorflow", "tensorflow"),
        "torch": module_version("torch", "torch"),
    }


@dataclass
class RegenerateResult:
    """What a regeneration did: cases written (or refused) and how the files changed."""

    manifest: dict[str, Any] | None
    disagreements: list[Disagreement]
    total_bytes: int = 0
    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _old_checksums(out: Path) -> dict[str, str]:
    try:
        old = json.loads((out / MANIFEST_NAME).read_text())
        return {e["name"]: e["sha256"] for e in old["cases"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def regenerate(out: Path, backends: Mapping[str, ModuleType | None],
               cases: Iterable[FixtureCase] | None = None,
               progress: Callable[[str], None] | None = None) -> RegenerateResult:
    """Generate every case and, if all agree, atomically replace ``out`` with the new fixtures.

    Nothing is written when any case disagrees. The new tree is written to a sibling staging
    directory, verified, then renamed into place; an interrupted run leaves ``out`` as it was.
    """
    out = Path(out).resolve()
    versions = collect_versions(backends)
    generated: list[Generated] = []
    disagreements: list[Disagreement] = []
    for fc in cases if cases is not None else fixture_cases():
        if progress:
            progress(fc.name)
        result = generate_case(fc, backends, versions)
        if isinstance(result, Generated):
            generated.append(result)
        else:
            disagreements.extend(result)
    if disagreements:
        return RegenerateResult(None, disagreements)
    manifest, files = build_manifest(generated, versions)
    total = len(manifest_bytes(manifest)) + sum(len(c) for c in files.values())
    if total > BUDGET_BYTES:
        raise FixtureError(f"{out}: fixtures would take {total} bytes, over the budget "
                           f"{BUDGET_BYTES}")
    old = _old_checksums(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        os.chmod(staging, 0o755)
        write_tree(staging, manifest, files)
        readme = out / README_NAME if (out / README_NAME).exists() else FIXTURES_DIR / README_NAME
        if readme.exists():
            shutil.copyfile(readme, staging / README_NAME)
        problems = verify(staging)
        if problems:
            raise FixtureError("freshly written fixtures do not verify:\n" + "\n".join(problems))
        replace_directory(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    new = {e["name"]: e["sha256"] for e in manifest["cases"]}
    return RegenerateResult(
        manifest, [], total,
        changed=sorted(n for n in new if n in old and old[n] != new[n]),
        added=sorted(set(new) - set(old)),
        removed=sorted(set(old) - set(new)),
    )
