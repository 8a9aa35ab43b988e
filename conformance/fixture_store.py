"""Golden fixtures on disk: the format, deterministic bytes, the manifest, reading and verification.

A fixtures directory (``fixtures/`` in the checkout; layout in fixtures/README.md) holds

    manifest.json      one entry per case, sorted by name (schema: :func:`validate_manifest`)
    data/<name>.npz    the case's arrays: ``inputs/x``, ``inputs/dy``, ``nnref/forward/y``,
                       ``torch/backward/dx``, ``expected/forward/y`` (hand cases),
                       ``reference/forward/y`` (float16 / bfloat16 cases), ...
    README.md          optional, not checked

Cases are stored in float32 and float64, and a few per op and rank in float16 and bfloat16
(``LOW_PRECISION``): their inputs exactly as the format stores them, nnref's output in the format
and the float64 reference (nnref in float64 on those inputs), which every implementation is
judged against within the bound of its own arithmetic (conformance.low_precision). NumPy's .npy
has no bfloat16: a bfloat16 array is stored as its uint16 bit pattern (the manifest lists it as
uint16) and read back as bfloat16 (:class:`StoredCase`), bit for bit.

The case list and the generation (running nnref and the frameworks, writing a directory) are in
``conformance.fixture_generation``. A generated case seeds its own generator from its name
(:func:`seed_for`); nothing depends on global random state. Files are
written byte-for-byte deterministically: a zip written member by member in sorted order with a fixed
date and no compression, and JSON with sorted keys, a fixed indent and a trailing newline.

Tolerances (all from conformance/tolerance.py, elementwise, recomputed from the stored inputs):

- generation: a framework (in the case dtype) against nnref in float64 on the same values,
  ``comparison_atol(bound(dtype), bound(float64))``; its largest element is the manifest's
  ``tolerance`` entry;
- tests: a live implementation or framework (in the case dtype) against a stored output in the
  same dtype, ``comparison_atol(bound(dtype), bound(dtype))``: both sides err by their bound.
- float16 / bfloat16: every backend against the stored float64 reference within
  ``low_precision.allowed`` of its declared arithmetic (float32 accumulation unless it declares
  otherwise); the manifest's ``tolerance`` is nnref's (float32 accumulation).
"""


from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from . import registry
from .cases import Case
from .ops import case_from_dict, forward_functions
from .paths import fixtures_dir

FIXTURES_DIR = fixtures_dir()
MANIFEST_NAME = "manifest.json"
README_NAME = "README.md"
DATA_DIR = "data"

FORMAT = "nnref-fixtures/1"
GENERATOR = "conformance.fixture_store"
# Bump when the generator changes what it writes (case list, array names, manifest schema).
GENERATOR_VERSION = "3"
# The whole directory, manifest included: 4.7 MB of float32 / float64 cases and 1.1 MB of
# float16 / bfloat16 ones (110 small cases; most of each is .npz and manifest overhead).
BUDGET_BYTES = 6_000_000

FRAMEWORKS = ("torch", "tensorflow", "scipy")
DIRECTIONS = ("forward", "backward")
LOW_PRECISION = ("float16", "bfloat16")
DTYPES = ("float32", "float64", *LOW_PRECISION)
SUFFIX = {"float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16"}
VERSION_KEYS = ("generator", "nnref", "numpy", "scipy", "tensorflow", "torch")
ABSENT = "absent"
# A framework whose backend computes no such dtype (its registry row's dtypes): SciPy in float16.
NO_DTYPE = "dtype-unsupported"

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


def case_dtype(name: str) -> np.dtype:
    """A stored case's dtype by its manifest name ("bfloat16": ml_dtypes' NumPy dtype)."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _as_bits(arr: np.ndarray) -> np.ndarray:
    """A bfloat16 array as its uint16 bit pattern (what .npy can store); others unchanged."""
    return arr.view(np.uint16) if arr.dtype.name == "bfloat16" else arr


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
            arr = _as_bits(np.ascontiguousarray(arrays[key]))
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


def jsonable(value: Any) -> Any:
    """``value`` as the manifest stores it (through JSON: tuples become lists)."""
    return json.loads(json.dumps(value))


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


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
    "params": dict, "dtype": str, "seed": (int, type(None)), "values": (dict, type(None)),
    "arrays": dict, "tolerance": dict, "outputs": dict, "results": dict, "file": str,
    "sha256": str, "bytes": int, "versions": dict,
}
_STATUS_SPEC = {
    "agrees": {"status": str, "array": str, "headroom": (int, float)},
    "divergence": {"status": str, "divergence": str, "array": str},
    ABSENT: {"status": str},
    NO_DTYPE: {"status": str},
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
    low = entry["dtype"] in LOW_PRECISION
    values = entry["values"]
    if low != (values is not None) or (low and (
            sorted(values) != ["amount", "regime"] or not isinstance(values["regime"], str)
            or not _is(values["amount"], (int, float)))):
        out.append(f"{where}: values must be {{regime: str, amount: number}} for a float16 / "
                   "bfloat16 case and null otherwise")
    if low and entry["kind"] != "generated":
        out.append(f"{where}: a float16 / bfloat16 case is generated, not hand")
    if entry["op"] not in forward_functions():
        out.append(f"{where}: op {entry['op']!r} not in {forward_functions()}")
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
        if jsonable(case.params()) != entry["params"]:
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
            if low and n != "indices" and f"reference/{d}/{n}" not in arrays:
                out.append(f"{where}: reference/{d}/{n} not stored")
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
        return case_dtype(self.entry["dtype"])

    @property
    def low_precision(self) -> bool:
        """A float16 / bfloat16 case (judged against its float64 ``reference`` outputs)."""
        return self.entry["dtype"] in LOW_PRECISION

    def _array(self, key: str) -> np.ndarray:
        """A stored array as a fresh copy; in a bfloat16 case, uint16 bits read as bfloat16."""
        value = np.array(self.arrays[key])
        if value.dtype == np.uint16 and self.entry["dtype"] == "bfloat16":
            return value.view(self.dtype)
        return value

    def inputs(self) -> dict[str, np.ndarray]:
        """The stored inputs (fresh copies: implementations cannot alter the fixture)."""
        return {k.split("/", 1)[1]: self._array(k) for k in self.arrays if k.startswith("inputs/")}

    def outputs(self, source: str, direction: str) -> dict[str, np.ndarray]:
        """Stored outputs of ``source`` (nnref, a framework, "expected" or "reference") in one
        direction (fresh copies)."""
        prefix = f"{source}/{direction}/"
        return {k[len(prefix):]: self._array(k) for k in self.arrays if k.startswith(prefix)}

    def status(self, framework: str, direction: str) -> dict[str, dict[str, Any]]:
        return dict(self.entry["results"][framework][direction])


def load_case(directory: Path, entry: Mapping[str, Any]) -> StoredCase:
    """Read one case's data file after checking its checksum (FixtureError names the file)."""
    content = read_case_file(directory, entry)
    path = Path(directory) / entry["file"]
    return StoredCase(entry, MappingProxyType(read_npz(content, str(path))), path)
