"""Golden fixtures: the stored case list, deterministic writing, the manifest, verification.

A fixtures directory (``fixtures/`` in the checkout; layout in fixtures/README.md) holds

    manifest.json      one entry per case, sorted by name (schema: :func:`validate_manifest`)
    data/<name>.npz    the case's arrays: ``inputs/x``, ``inputs/dy``, ``nnref/forward/y``,
                       ``torch/backward/dx``, ``expected/forward/y`` (hand cases), ...
    README.md          optional, not checked

Cases are explicit: every op record's hand-computed cases and stored generated cases
(``conformance/ops/<op>.py``), each in float32 and float64. A generated case seeds its own
generator from its name (:func:`seed_for`); nothing depends on global random state. Files are
written byte-for-byte deterministically: a zip written member by member in sorted order with a fixed
date and no compression, and JSON with sorted keys, a fixed indent and a trailing newline.

Tolerances (all from conformance/tolerance.py, elementwise, recomputed from the stored inputs):

- generation: a framework (in the case dtype) against nnref in float64 on the same values,
  ``comparison_atol(bound(dtype), bound(float64))``; its largest element is the manifest's
  ``tolerance`` entry;
- tests: a live implementation or framework (in the case dtype) against a stored output in the
  same dtype, ``comparison_atol(bound(dtype), bound(dtype))``: both sides err by their bound.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import numpy as np

from . import ops, registry
from . import tolerance as tol
from .backends import Unsupported, load_backend
from .cases import Case
from .comparison import Mismatch, compare
from .ops import HandCase, case_from_dict
from .paths import fixtures_dir
from .runner import run_pass

FIXTURES_DIR = fixtures_dir()
MANIFEST_NAME = "manifest.json"
README_NAME = "README.md"
DATA_DIR = "data"

FORMAT = "nnref-fixtures/1"
GENERATOR = "conformance.fixture_store"
# Bump when the generator changes what it writes (case list, array names, manifest schema).
GENERATOR_VERSION = "2"
BUDGET_BYTES = 5_000_000

FRAMEWORKS = ("torch", "tensorflow", "scipy")
DIRECTIONS = ("forward", "backward")
DTYPES = ("float32", "float64")
_SUFFIX = {"float32": "f32", "float64": "f64"}
VERSION_KEYS = ("generator", "nnref", "numpy", "scipy", "tensorflow", "torch")
ABSENT = "absent"

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class FixtureError(Exception):
    """A fixtures directory or file that does not match its manifest (the message names it)."""


# --------------------------------------------------------------------------------------------
# the case list


def seed_for(name: str) -> int:
    """The seed of a generated case: CRC-32 of its name (so it never depends on list order)."""
    return zlib.crc32(name.encode("utf-8"))


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

    @property
    def kind(self) -> str:
        return "generated" if self.hand is None else "hand"

    def arrays(self) -> dict[str, np.ndarray]:
        """The case's inputs (and upstream gradient ``dy``) in its dtype."""
        if self.hand is not None:
            return self.hand.arrays(np.dtype(self.dtype))
        assert self.seed is not None
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


def build_cases(hand: Iterable[HandCase], generated: Iterable[tuple[str, Case]],
                differences: Mapping[str, Mapping[str, str]] | None = None) -> list[FixtureCase]:
    """Every (case, dtype) as a FixtureCase, sorted by name; duplicate names are an error."""
    differences = differences or {}
    out: list[FixtureCase] = []
    for dtype in DTYPES:
        for hc in hand:
            name = f"hand-{hc.name}-{_SUFFIX[dtype]}"
            out.append(FixtureCase(name, hc.case, dtype, None, hc,
                                   MappingProxyType(dict(differences.get(name, {})))))
        for base, case in generated:
            name = f"{base}-{_SUFFIX[dtype]}"
            out.append(FixtureCase(name, case, dtype, seed_for(name), None,
                                   MappingProxyType(dict(differences.get(name, {})))))
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


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _headroom(value: float) -> float:
    return float(f"{value:.3g}")


def generate_case(fc: FixtureCase, backends: Mapping[str, ModuleType | None],
                  versions: Mapping[str, str]) -> Generated | list[Disagreement]:
    """Run nnref and every framework on one case; its entry and arrays, or why it is refused."""
    dtype = np.dtype(fc.dtype)
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
        atol = atols(fc.case, a, dtype, np.float64, direction)
        outputs[direction] = names
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
                    if value.divergence_id not in registry.ids():
                        problems.append(Disagreement(
                            fc.name, fw, direction, n,
                            f"Unsupported({value.divergence_id!r}) is not in divergences.toml"))
                    res[n] = {"status": "divergence", "divergence": value.divergence_id}
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
        "case": _jsonable(fc.case.to_dict()),
        "params": _jsonable(fc.case.params()),
        "dtype": fc.dtype,
        "seed": fc.seed,
        "arrays": {k: {"dtype": np.asarray(v).dtype.name, "shape": list(np.shape(v))}
                   for k, v in sorted(data.items())},
        "tolerance": tolerance,
        "outputs": outputs,
        "results": results,
        "file": f"{DATA_DIR}/{fc.name}.npz",
        "versions": dict(versions),
    }
    return Generated(entry, data)


# --------------------------------------------------------------------------------------------
# deterministic files


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An .npz (uncompressed zip of .npy members) that depends only on the arrays.

    Members are written in sorted order with a fixed date, fixed attributes and no compression
    (so neither the clock, the platform, the dict order nor the zlib version shows in the bytes);
    arrays are little-endian, C-ordered, .npy format 1.0, never pickled.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            arr = np.asarray(arrays[key])
            if arr.dtype.kind not in "fiub" or arr.dtype.hasobject:
                raise TypeError(f"{key}: cannot store dtype {arr.dtype}")
            arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
            member = io.BytesIO()
            np.lib.format.write_array(member, arr, version=(1, 0), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def read_npz(content: bytes, where: str = "") -> dict[str, np.ndarray]:
    """The arrays of an .npz given as bytes (never unpickled)."""
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise FixtureError(f"{where}: not a readable .npz ({exc})") from exc


def _is_leaf(value: Any) -> bool:
    """A list of scalars, or an object whose values are scalars or lists of scalars."""
    def scalar(v: Any) -> bool:
        return not isinstance(v, dict | list)

    if isinstance(value, list):
        return all(scalar(v) for v in value)
    return isinstance(value, dict) and all(
        scalar(v) or (isinstance(v, list) and all(scalar(i) for i in v)) for v in value.values())


def _json(value: Any, depth: int = 0) -> str:
    """Canonical JSON: sorted keys, one-space indent, short leaf objects and lists on one line."""
    if not isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=True, allow_nan=False)
    flat = json.dumps(value, sort_keys=True, ensure_ascii=True, allow_nan=False,
                      separators=(", ", ": "))
    if not value or (_is_leaf(value) and depth + len(flat) <= 100):
        return flat
    pad = " " * (depth + 1)
    if isinstance(value, list):
        items = [_json(v, depth + 1) for v in value]
        return "[\n" + ",\n".join(pad + i for i in items) + "\n" + " " * depth + "]"
    items = [f"{json.dumps(str(k))}: {_json(value[k], depth + 1)}" for k in sorted(value)]
    return "{\n" + ",\n".join(pad + i for i in items) + "\n" + " " * depth + "}"


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The canonical manifest text (see ``_json``), ASCII, with a trailing newline."""
    return (_json(dict(manifest)) + "\n").encode("ascii")


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


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


# --------------------------------------------------------------------------------------------
# reading and verification


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dup = sorted(k for k, n in Counter(keys).items() if n > 1)
    if dup:
        raise ValueError(f"duplicate JSON key(s) {dup}")
    return dict(pairs)


def load_manifest(directory: Path = FIXTURES_DIR) -> dict[str, Any]:
    """The parsed manifest; FixtureError naming manifest.json if it is missing or not JSON."""
    path = Path(directory) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FixtureError(f"{path}: cannot read the manifest ({exc})") from exc
    try:
        manifest = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:
        raise FixtureError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise FixtureError(f"{path}: expected a JSON object")
    return manifest


def _type_problems(where: str, obj: Any, spec: Mapping[str, Any]) -> list[str]:
    if not isinstance(obj, dict):
        return [f"{where}: expected an object, got {type(obj).__name__}"]
    out = [f"{where}: missing key {k!r}" for k in spec if k not in obj]
    out += [f"{where}: unknown key {k!r}" for k in obj if k not in spec]
    for k, types in spec.items():
        if k in obj and not _is(obj[k], types):
            out.append(f"{where}: {k!r} has type {type(obj[k]).__name__}")
    return out


def _is(value: Any, types: type | tuple[type, ...]) -> bool:
    """isinstance, except that a bool is not an int here."""
    types = types if isinstance(types, tuple) else (types,)
    return bool in types if isinstance(value, bool) else isinstance(value, types)


_TOP_SPEC = {"format": str, "generator": dict, "versions": dict, "cases": list}
_CASE_SPEC = {
    "name": str, "kind": str, "hand_case": (str, type(None)), "op": str, "case": dict,
    "params": dict, "dtype": str, "seed": (int, type(None)), "arrays": dict, "tolerance": dict,
    "outputs": dict, "results": dict, "file": str, "sha256": str, "bytes": int, "versions": dict,
}
_STATUS_SPEC = {
    "agrees": {"status": str, "array": str, "headroom": (int, float)},
    "divergence": {"status": str, "divergence": str, "array": str},
    "absent": {"status": str},
}


def _versions_problems(where: str, versions: Any) -> list[str]:
    if not isinstance(versions, dict):
        return [f"{where}: versions must be an object"]
    out = []
    if sorted(versions) != sorted(VERSION_KEYS):
        out.append(f"{where}: versions keys {sorted(versions)} != {sorted(VERSION_KEYS)}")
    out += [f"{where}: version {k!r} must be a non-empty string" for k, v in versions.items()
            if not isinstance(v, str) or not v]
    return out


def _case_problems(entry: dict[str, Any]) -> list[str]:
    name = entry.get("name")
    where = f"{MANIFEST_NAME}: case {name!r}"
    out = _type_problems(where, entry, _CASE_SPEC)
    if out:
        return out
    if not _NAME_RE.match(name):
        out.append(f"{where}: name must match {_NAME_RE.pattern}")
    if entry["file"] != f"{DATA_DIR}/{name}.npz":
        out.append(f"{where}: file {entry['file']!r} must be {DATA_DIR}/{name}.npz")
    if not _SHA_RE.match(entry["sha256"]):
        out.append(f"{where}: sha256 must be 64 lower-case hex digits")
    if entry["bytes"] < 0:
        out.append(f"{where}: bytes must be >= 0")
    if entry["dtype"] not in DTYPES:
        out.append(f"{where}: dtype {entry['dtype']!r} not in {DTYPES}")
    if entry["op"] not in ops.forward_functions():
        out.append(f"{where}: op {entry['op']!r} not in {ops.forward_functions()}")
    if entry["kind"] == "generated":
        if entry["seed"] != seed_for(name) or entry["hand_case"] is not None:
            out.append(f"{where}: a generated case has seed crc32(name) = {seed_for(name)} "
                       "and hand_case null")
    elif entry["kind"] == "hand":
        if entry["seed"] is not None or entry["hand_case"] is None:
            out.append(f"{where}: a hand case has seed null and a hand_case name")
    else:
        out.append(f"{where}: kind {entry['kind']!r} must be 'generated' or 'hand'")
    try:
        case = case_from_dict(entry["case"])
        if case.op != entry["op"]:
            out.append(f"{where}: case op {case.op!r} != op {entry['op']!r}")
        if _jsonable(case.params()) != entry["params"]:
            out.append(f"{where}: params do not match the case")
    except (KeyError, TypeError, ValueError) as exc:
        out.append(f"{where}: case is not a valid Case ({exc!r})")
    out += _versions_problems(where, entry["versions"])

    arrays = entry["arrays"]
    for key, meta in arrays.items():
        if (not isinstance(meta, dict) or sorted(meta) != ["dtype", "shape"]
                or not isinstance(meta["dtype"], str) or not isinstance(meta["shape"], list)
                or not all(isinstance(n, int) and n >= 0 for n in meta["shape"])):
            out.append(f"{where}: arrays[{key!r}] must be {{dtype: str, shape: [int]}}")
    if not any(k.startswith("inputs/") for k in arrays):
        out.append(f"{where}: no inputs/ arrays")
    outputs, tolerance, results = entry["outputs"], entry["tolerance"], entry["results"]
    if sorted(outputs) != sorted(DIRECTIONS) or sorted(tolerance) != sorted(DIRECTIONS):
        return [*out, f"{where}: outputs and tolerance need exactly {DIRECTIONS}"]
    if sorted(results) != sorted(FRAMEWORKS):
        return [*out, f"{where}: results need exactly {FRAMEWORKS}"]
    ids = set(registry.ids())
    for d in DIRECTIONS:
        names = outputs[d]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            out.append(f"{where}: outputs[{d!r}] must be a list of names")
            continue
        for n in names:
            if f"nnref/{d}/{n}" not in arrays:
                out.append(f"{where}: nnref/{d}/{n} not stored")
            if entry["kind"] == "hand" and f"expected/{d}/{n}" not in arrays:
                out.append(f"{where}: expected/{d}/{n} not stored")
        t = tolerance[d]
        if (not isinstance(t, dict) or sorted(t) != sorted(names) or not all(
                _is(v, (int, float)) and v >= 0 for v in t.values())):
            out.append(f"{where}: tolerance[{d!r}] must give a number >= 0 per output")
        for fw in FRAMEWORKS:
            res = results[fw].get(d) if isinstance(results[fw], dict) else None
            if not isinstance(res, dict) or sorted(res) != sorted(names):
                out.append(f"{where}: results[{fw!r}][{d!r}] must have one entry per output")
                continue
            for n, r in res.items():
                w = f"{where}: results[{fw!r}][{d!r}][{n!r}]"
                status = r.get("status") if isinstance(r, dict) else None
                if status not in _STATUS_SPEC:
                    out.append(f"{w}: status must be one of {sorted(_STATUS_SPEC)}")
                    continue
                spec = dict(_STATUS_SPEC[status])
                if status == "divergence" and "array" not in r:
                    spec.pop("array")
                out += _type_problems(w, r, spec)
                if "array" in r and r["array"] != f"{fw}/{d}/{n}":
                    out.append(f"{w}: array must be {fw}/{d}/{n}")
                elif "array" in r and r["array"] not in arrays:
                    out.append(f"{w}: array {r['array']!r} not stored")
                if status == "divergence" and r.get("divergence") not in ids:
                    out.append(f"{w}: divergence {r.get('divergence')!r} not in divergences.toml")
    return out


def validate_manifest(manifest: Any) -> list[str]:
    """Schema problems of a parsed manifest (empty when valid)."""
    out = _type_problems(MANIFEST_NAME, manifest, _TOP_SPEC)
    if out:
        return out
    if manifest["format"] != FORMAT:
        out.append(f"{MANIFEST_NAME}: format {manifest['format']!r} != {FORMAT!r}")
    if manifest["generator"] != {"name": GENERATOR, "version": GENERATOR_VERSION}:
        out.append(f"{MANIFEST_NAME}: generator {manifest['generator']!r} is not "
                   f"{GENERATOR} {GENERATOR_VERSION} (regenerate)")
    out += _versions_problems(MANIFEST_NAME, manifest["versions"])
    names = []
    for entry in manifest["cases"]:
        if not isinstance(entry, dict):
            out.append(f"{MANIFEST_NAME}: every case must be an object")
            continue
        out += _case_problems(entry)
        names.append(entry.get("name"))
    dup = sorted(str(n) for n, k in Counter(names).items() if k > 1)
    if dup:
        out.append(f"{MANIFEST_NAME}: duplicate case name(s) {dup}")
    if names != sorted(names, key=str):
        out.append(f"{MANIFEST_NAME}: cases must be sorted by name")
    return out


def read_case_file(directory: Path, entry: Mapping[str, Any]) -> bytes:
    """A case's data file, checked against its manifest size and SHA-256 (FixtureError if not)."""
    path = Path(directory) / entry["file"]
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise FixtureError(f"{path}: missing or unreadable (case {entry['name']!r}: {exc})"
                           ) from exc
    digest = sha256(content)
    if len(content) != entry["bytes"] or digest != entry["sha256"]:
        raise FixtureError(
            f"{path}: altered: SHA-256 {digest} ({len(content)} bytes), manifest says "
            f"{entry['sha256']} ({entry['bytes']} bytes) for case {entry['name']!r}"
        )
    return content


def _file_problems(directory: Path, entry: Mapping[str, Any]) -> list[str]:
    try:
        content = read_case_file(directory, entry)
        arrays = read_npz(content, str(Path(directory) / entry["file"]))
    except FixtureError as exc:
        return [str(exc)]
    path = Path(directory) / entry["file"]
    stored = {k: {"dtype": v.dtype.name, "shape": list(v.shape)} for k, v in arrays.items()}
    if stored != entry["arrays"]:
        missing = sorted(set(entry["arrays"]) - set(stored))
        extra = sorted(set(stored) - set(entry["arrays"]))
        differ = sorted(k for k in set(stored) & set(entry["arrays"])
                        if stored[k] != entry["arrays"][k])
        return [f"{path}: arrays do not match the manifest (missing {missing}, extra {extra}, "
                f"dtype/shape differ {differ})"]
    return []


def verify(directory: Path = FIXTURES_DIR) -> list[str]:
    """Every problem of a fixtures directory, each naming its file (empty when it verifies).

    Checks the manifest's schema and canonical form, every data file's size, SHA-256 and array
    list, files missing from or not listed in the manifest, and the size budget.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return [f"{directory}: not a directory"]
    try:
        manifest = load_manifest(directory)
    except FixtureError as exc:
        return [str(exc)]
    manifest_path = directory / MANIFEST_NAME
    problems = [f"{directory}/{p}" for p in validate_manifest(manifest)]
    if problems:
        return problems
    if manifest_bytes(manifest) != manifest_path.read_bytes():
        problems.append(f"{manifest_path}: not in canonical form (sorted keys, one-space "
                        "indent, trailing newline): edited by hand? regenerate")
    listed = {e["file"] for e in manifest["cases"]}
    for entry in manifest["cases"]:
        problems += _file_problems(directory, entry)
    allowed = listed | {MANIFEST_NAME, README_NAME}
    total = manifest_path.stat().st_size
    for path in sorted(p for p in directory.rglob("*") if not p.is_dir()):
        rel = path.relative_to(directory).as_posix()
        if rel not in allowed:
            problems.append(f"{path}: extra file, not listed in {MANIFEST_NAME}")
        elif rel != README_NAME and rel != MANIFEST_NAME:
            total += path.stat().st_size
    if total > BUDGET_BYTES:
        problems.append(f"{directory}: {total} bytes of fixtures, over the budget {BUDGET_BYTES}")
    return problems


@dataclass(frozen=True)
class StoredCase:
    """One case read back from a fixtures directory (checksum verified)."""

    entry: Mapping[str, Any]
    arrays: Mapping[str, np.ndarray]
    path: Path

    @property
    def name(self) -> str:
        return str(self.entry["name"])

    @property
    def case(self) -> Case:
        return case_from_dict(self.entry["case"])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.entry["dtype"])

    def inputs(self) -> dict[str, np.ndarray]:
        """The stored inputs (fresh copies: implementations cannot alter the fixture)."""
        return {k.split("/", 1)[1]: np.array(v) for k, v in self.arrays.items()
                if k.startswith("inputs/")}

    def outputs(self, source: str, direction: str) -> dict[str, np.ndarray]:
        """Stored outputs of ``source`` (nnref, a framework, or "expected") in one direction."""
        prefix = f"{source}/{direction}/"
        return {k[len(prefix):]: v for k, v in self.arrays.items() if k.startswith(prefix)}

    def status(self, framework: str, direction: str) -> dict[str, dict[str, Any]]:
        return dict(self.entry["results"][framework][direction])


def load_case(directory: Path, entry: Mapping[str, Any]) -> StoredCase:
    """Read one case's data file after checking its checksum (FixtureError names the file)."""
    content = read_case_file(directory, entry)
    path = Path(directory) / entry["file"]
    return StoredCase(entry, MappingProxyType(read_npz(content, str(path))), path)
