"""Golden fixtures (fixtures/): integrity, the implementation under test, framework drift.

- core: the manifest and every checksum verify; the stored cases are the defined ones; the
  implementation under test reproduces every stored output (nnref's, each framework's and the
  hand numbers) within the error model's tolerance, recomputed from the stored inputs; an
  altered, missing or extra file is reported by name; writing is deterministic.
- torch / tf (markers): the installed framework, run now on the stored inputs, still produces
  what it produced at generation time; a mismatch names the case, the file and both versions.
  SciPy's stored outputs are checked the same way in core (SciPy is a core dependency).

Tolerances: a live computation in the case dtype against a stored output in the same dtype may
differ by ``comparison_atol(bound(dtype), bound(dtype))`` (both err by their bound); against the
hand numbers (exact, float64) by ``comparison_atol(bound(dtype), bound(float64))``. float16 /
bfloat16 cases: the implementation under test against the stored float64 reference within the
bound of the arithmetic it declares (``low_precision.judge``; marked ``low_precision``: a module
that declares none is not asked), a framework against its own stored output within twice the
bound of its declared arithmetic.
"""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import nnref
import numpy as np
import pytest

from .. import fixture_generation as fg
from .. import fixture_store as fs
from .. import fixtures_cli
from .. import low_precision as lp
from .. import tolerance as tol
from ..backend_registry import backend as backend_row
from ..backends import Unsupported, load_backend
from ..cases import CALL_ATTR
from ..comparison import Mismatch, compare
from ..frameworks import require
from ..harness import context
from ..ops import hand_cases
from ..ops.conv import ConvCase
from ..ops.max_pool import PoolCase

HAND_CASES = hand_cases()

FIXTURES = fs.FIXTURES_DIR


def _stored_entries() -> dict[str, dict[str, Any]]:
    """Manifest entries by name, for parametrisation (empty if the manifest is unreadable:
    test_fixtures_verify then reports why)."""
    try:
        cases = fs.load_manifest(FIXTURES)["cases"]
    except (fs.FixtureError, KeyError, TypeError):
        return {}
    return {e["name"]: e for e in cases if isinstance(e, dict) and isinstance(e.get("name"), str)}


ENTRIES = _stored_entries()
NAMES = sorted(ENTRIES)
DEFINED = {fc.name: fc for fc in fg.fixture_cases()}


def _run(case: Any, backend: Any, a: dict[str, np.ndarray], direction: str) -> dict:
    return (case.forward if direction == "forward" else case.backward)(backend, a)


# --------------------------------------------------------------------------------------------
# integrity


@pytest.mark.parametrize("layout", ["checkout", "copy without impl", "installed"])
def test_fixtures_are_found_in_every_layout_the_suite_runs_from(tmp_path, layout):
    """paths.fixtures_dir, loaded from a conformance/ in each layout: a checkout (fixtures/ and
    impl/nnref beside the package), a copy laid out like one without impl/ (the mutation run's
    scratch directory: conformance/, fixtures/ and a generated pyproject.toml), and an installed
    package (the fixtures as its package data conformance/fixtures)."""
    import importlib.util

    from .. import paths

    (tmp_path / "conformance").mkdir()
    shutil.copy(Path(paths.__file__), tmp_path / "conformance" / "paths.py")
    (tmp_path / "pyproject.toml").write_text("")
    if layout == "installed":
        expected = tmp_path / "conformance" / "fixtures"
    else:
        expected = tmp_path / "fixtures"
        if layout == "checkout":
            (tmp_path / "impl" / "nnref").mkdir(parents=True)
    expected.mkdir()
    (expected / "manifest.json").write_text("{}")
    spec = importlib.util.spec_from_file_location("copied_paths",
                                                  tmp_path / "conformance" / "paths.py")
    copied = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copied)
    assert copied.fixtures_dir() == expected.resolve()
    assert (copied.checkout_root() is not None) == (layout == "checkout")


def test_fixtures_verify():
    problems = fs.verify(FIXTURES)
    assert not problems, "fixtures do not verify:\n" + "\n".join(problems)


def test_verify_command_succeeds_on_the_stored_fixtures(capsys):
    assert fixtures_cli.main(["verify", str(FIXTURES)]) == 0
    assert "checksums OK" in capsys.readouterr().out


def test_stored_cases_are_the_defined_cases():
    """fixtures/ holds exactly the case list of fixture_generation (else: regenerate)."""
    assert sorted(DEFINED) == NAMES, (
        f"stale fixtures: defined but not stored {sorted(set(DEFINED) - set(NAMES))}, stored "
        f"but not defined {sorted(set(NAMES) - set(DEFINED))}; run "
        "`python -m conformance fixtures regenerate`"
    )
    for name, fc in DEFINED.items():
        e = ENTRIES[name]
        values = None if fc.values is None else {"regime": fc.values[0], "amount": fc.values[1]}
        defined = (json.loads(json.dumps(fc.case.to_dict())), fc.dtype, fc.seed, fc.kind, values)
        assert (e["case"], e["dtype"], e["seed"], e["kind"], e["values"]) == defined, (
            f"stale fixture {name}")


def test_every_hand_case_is_stored_in_both_dtypes():
    for hc in HAND_CASES:
        for suffix in ("f32", "f64"):
            assert f"hand-{hc.name}-{suffix}" in ENTRIES


def test_generated_cases_cover_every_parameter_family():
    cases = [fc.case for fc in DEFINED.values()]
    pads = {c.mode for c in cases if c.op == "pad"}
    assert pads == {"constant", "reflect", "replicate", "circular"}
    convs = [c for c in cases if isinstance(c, ConvCase)]
    assert any(c.padding == "same" and c.stride != 1 for c in convs)
    assert any(isinstance(c.padding, tuple) and isinstance(c.padding[0], tuple) for c in convs)
    assert any(c.dilation != 1 for c in convs) and any(c.groups > 1 for c in convs)
    pools = [c for c in cases if isinstance(c, PoolCase)]
    assert any(c.ceil_mode for c in pools) and any(c.kind == "ties" for c in pools)
    assert any(c.dilation != 1 for c in pools)
    assert any(c.op == "batch_norm" and not c.training for c in cases)
    assert {fc.dtype for fc in DEFINED.values()} == set(fs.DTYPES)
    from ..ops import RECORDS

    for rec in RECORDS:  # a few stored cases at every rank of every op
        assert {c.rank for c in cases if c.record is rec} == set(rec.ranks), rec.name


def test_low_precision_cases_cover_every_op_rank_format_and_value_regime():
    """A float16 and a bfloat16 case of every op at every rank; across them every value regime
    and every offset; each stored input is exactly what its definition rounds to."""
    from ..ops import RECORDS

    low = [fc for fc in DEFINED.values() if fc.low_precision]
    for fmt in fs.LOW_PRECISION:
        have = {(fc.case.record.name, fc.case.rank) for fc in low if fc.dtype == fmt}
        assert have == {(r.name, rank) for r in RECORDS for rank in r.ranks}, fmt
    assert {fc.values[0] for fc in low} == set(lp.VALUE_REGIMES)
    assert {fc.values[1] for fc in low if fc.values[0] == "offset"} == set(lp.OFFSETS)
    for fc in low[:6]:
        stored = fs.load_case(FIXTURES, ENTRIES[fc.name]).inputs()
        for k, v in fc.arrays().items():
            assert stored[k].dtype == v.dtype == fs.case_dtype(fc.dtype), (fc.name, k)
            assert stored[k].tobytes() == v.tobytes(), (fc.name, k)


def test_every_bfloat16_bit_pattern_round_trips_through_a_data_file():
    """bfloat16 is stored as its uint16 bits and read back as bfloat16, NaN payloads and
    signed zeros included; float16 is stored natively."""
    bits = np.arange(2**16, dtype=np.uint16)
    bf16 = bits.view(fs.case_dtype("bfloat16"))
    content = fs.npz_bytes({"inputs/x": bf16, "inputs/y": bits.view(np.float16)})
    raw = fs.read_npz(content)
    assert raw["inputs/x"].dtype == np.uint16 and raw["inputs/y"].dtype == np.float16
    entry = {"name": "c", "dtype": "bfloat16"}
    back = fs.StoredCase(entry, raw, Path("c.npz")).inputs()
    assert back["x"].dtype == bf16.dtype and np.array_equal(back["x"].view(np.uint16), bits)
    assert np.array_equal(back["y"].view(np.uint16), bits)


# --------------------------------------------------------------------------------------------
# the implementation under test against every stored output


def _judged(name: str, direction: str) -> list[pytest.MarkDecorator]:
    op = ENTRIES[name]["op"]
    checks = pytest.mark.checks(op if direction == "forward" else f"{op}_backward")
    return [checks, pytest.mark.low_precision] if ENTRIES[name]["dtype"] in fs.LOW_PRECISION \
        else [checks]


def _function(case: Any, direction: str) -> str:
    return case.op if direction == "forward" else case.backward_op


def _low_precision_case(stored: fs.StoredCase, direction: str, impl: Any,
                        impl_name_opt: str) -> None:
    """The implementation under test in the case's format against the stored float64
    reference, within the bound of the arithmetic it declares for this function."""
    case, storage, a = stored.case, stored.dtype, stored.inputs()
    name = stored.name
    accumulation = lp.declared_accumulation(impl.module, _function(case, direction), storage)
    where = context(case, storage, stored.entry["seed"], impl_name_opt, direction,
                    _loading_code(name))
    got = _run(case, impl, {k: v.copy() for k, v in a.items()}, direction)
    want = stored.outputs("reference", direction)
    want.update({k: v for k, v in stored.outputs("nnref", direction).items() if k == "indices"})
    lp.judge(case, got, want, {k: v.astype(np.float64) for k, v in a.items()}, direction,
             lp.Arithmetic(storage, accumulation or "float32"), f"stored case {name}; {where}")


@pytest.mark.parametrize("how", ["sequential", "pairwise"])
def test_stored_low_precision_cases_reject_storage_accumulation(how):
    """Kernels that round every partial sum to the format fail the stored float16 and bfloat16
    conv2d, linear and avg_pool2d cases by the float32-accumulation bound; declaring
    "storage" they pass; nnref's own float32-accumulating kernels pass."""
    from .test_low_precision import simulated

    names = [n for n in NAMES if ENTRIES[n]["dtype"] in fs.LOW_PRECISION and n.rsplit("-", 1)[0]
             in {"conv2d-basic-bias", "linear-batch-bias", "avg_pool2d-k2-default-stride"}]
    assert len(names) == 6
    failed = []
    for name in names:
        stored = fs.load_case(FIXTURES, ENTRIES[name])
        for module, must_pass in ((simulated(how), False), (simulated(how, "storage"), True),
                                  (simulated("float32"), True)):
            module.module = module
            try:
                _low_precision_case(stored, "forward", module, "simulated")
            except Mismatch as exc:
                assert not must_pass, exc
                assert "float32 accumulation" in str(exc) and "stored case" in str(exc)
                failed.append(name)
    # one bfloat16 linear case sums too few terms to show it (its error stays within bound)
    assert len(failed) >= 5, failed


@pytest.mark.parametrize(("name", "direction"), [
    pytest.param(name, direction, id=f"{name}-{direction}", marks=_judged(name, direction))
    for name in NAMES for direction in fs.DIRECTIONS
])
def test_impl_reproduces_stored_outputs(name, direction, impl, impl_name_opt):
    stored = fs.load_case(FIXTURES, ENTRIES[name])  # checks the SHA-256 first
    if stored.low_precision:
        _low_precision_case(stored, direction, impl, impl_name_opt)
        return
    case, dtype = stored.case, stored.dtype
    a = stored.inputs()
    fc = DEFINED.get(name)
    if fc is not None:  # inputs are what the definition (seed crc32(name) / hand) gives
        for k, v in fc.arrays().items():
            assert v.dtype == a[k].dtype and np.array_equal(v, a[k]), (
                f"{stored.path}: stored input {k} is not what case {name} defines; regenerate")
    # a failure names the function and the output, and its reproducer loads the stored inputs
    where = context(case, dtype, (fc.seed if fc is not None else None) or 0, impl_name_opt,
                    direction, _loading_code(name))
    try:
        got = _run(case, impl, {k: v.copy() for k, v in a.items()}, direction)
    except Exception as exc:  # raised inside the implementation: the seed rebuilds the inputs
        if fc is not None and fc.hand is None and not hasattr(exc, CALL_ATTR):
            setattr(exc, CALL_ATTR, (case, direction, np.dtype(dtype).name, fc.seed))
        raise
    same = fg.atols(case, a, dtype, dtype, direction)
    exact = fg.atols(case, a, dtype, np.float64, direction)
    sources = [("nnref", same), *((fw, same) for fw in fs.FRAMEWORKS), ("expected", exact)]
    failures: dict[str, Mismatch] = {}  # output -> its first failure
    for source, atol in sources:
        for out, want in sorted(stored.outputs(source, direction).items()):
            if fc is not None and fc.hand is not None and source == "expected":
                assert np.array_equal(want, fc.hand.expected(direction)[out]), (
                    f"{stored.path}: hand numbers of {name} changed; regenerate")
            if out in failures:
                continue
            try:
                if out != "indices" and got[out].dtype != dtype:
                    raise Mismatch(f"{out}: dtype {got[out].dtype}, expected {dtype}")
                compare(out, got[out], want, atol[out])
            except Mismatch as exc:
                first, _, _ = str(exc).partition(" [")
                failures[out] = Mismatch(f"{first} (stored case {name}, {source}'s output) "
                                         f"[{where}]")
    if len(failures) == 1:
        raise next(iter(failures.values()))
    if failures:
        raise ExceptionGroup(f"case {name} ({stored.path}): {len(failures)} outputs differ",
                             list(failures.values()))


def _loading_code(name: str) -> str:
    """Reproducer code that replaces the arrays ``a`` with the stored case's inputs."""
    return ("from conformance import fixture_store as fs  # the stored inputs of the case\n"
            "entry = next(e for e in fs.load_manifest(fs.FIXTURES_DIR)['cases'] "
            f"if e['name'] == {name!r})\n"
            "a = fs.load_case(fs.FIXTURES_DIR, entry).inputs()")


# --------------------------------------------------------------------------------------------
# frameworks against their own stored outputs (drift)

DRIFT = [
    pytest.param(fw, name, marks=marks, id=f"{fw}-{name}")
    for fw, marks in (("torch", [pytest.mark.torch]), ("tensorflow", [pytest.mark.tf]),
                      ("scipy", []))
    for name in NAMES  # in float16 / bfloat16 only where the backend computes the format
    if ENTRIES[name]["dtype"] not in fs.LOW_PRECISION
    or ENTRIES[name]["dtype"] in backend_row(fw).storage_formats
]


def _cpu_dependent(stored: fs.StoredCase, backend: Any, direction: str) -> str:
    """The registry id under which the backend computes, declares or refuses this case's
    function and format differently on other CPUs ("" if it does not)."""
    key = f"{_function(stored.case, direction)} {np.dtype(stored.dtype).name}"
    return getattr(backend, "CPU_DEPENDENT_DIVERGENCES", {}).get(key, "")


def _drift_atol(stored: fs.StoredCase, backend: Any, direction: str) -> dict[str, Any]:
    """What a framework may differ from its own stored output: in float32 / float64 both err
    by the dtype's bound; in float16 / bfloat16 by twice the bound of its declared arithmetic
    (against the stored reference), or, where its kernel differs by CPU (the output may have
    been stored on a CPU with the other kernel), by that bound plus the storage-accumulation
    bound (the looser of the two models)."""
    case, a = stored.case, stored.inputs()
    if not stored.low_precision:
        return fg.atols(case, a, stored.dtype, stored.dtype, direction)
    storage = stored.dtype
    a64 = {k: v.astype(np.float64) for k, v in a.items()}
    want = stored.outputs("reference", direction)
    arithmetic = lp.Arithmetic(storage, lp.declared_accumulation(
        backend, _function(case, direction), storage) or "float32")
    allowed = lp.allowed(case, a64, direction, arithmetic, want)
    other = allowed
    if _cpu_dependent(stored, backend, direction):
        other = lp.allowed(case, a64, direction, lp.Arithmetic(storage, "storage"), want)
    return {k: tol.comparison_atol(v, other[k]) for k, v in allowed.items()}


@pytest.mark.parametrize(("framework", "name"), DRIFT)
def test_framework_matches_its_stored_output(framework, name):
    module = require(framework)
    backend = load_backend(framework)
    stored = fs.load_case(FIXTURES, ENTRIES[name])
    recorded = stored.entry["versions"][framework]
    installed = str(module.__version__)
    case, a = stored.case, stored.inputs()
    where = (f"case {name} ({stored.path}): stored {framework} {recorded}, installed "
             f"{framework} {installed}")
    failures, compared, other_cpu = [], 0, []
    for direction in fs.DIRECTIONS:
        status = stored.status(framework, direction)
        if all(s["status"] == fs.ABSENT for s in status.values()):
            continue
        live = fg.run_outputs(case, backend, a, direction, stored.entry["outputs"][direction])
        atol = _drift_atol(stored, backend, direction)
        want = stored.outputs(framework, direction)
        varies = _cpu_dependent(stored, backend, direction)
        for out, s in sorted(status.items()):
            got = live[out]
            if s["status"] == fs.ABSENT:
                continue
            if varies and ((isinstance(got, Unsupported) and got.divergence_id == varies)
                           or (out not in want and s.get("divergence") == varies)):
                # refused on one kind of CPU, computed on the other: nothing to compare
                other_cpu.append(f"{direction} {out}")
                continue
            compared += 1
            if isinstance(got, Unsupported):
                if s["status"] != "divergence" or s["divergence"] != got.divergence_id:
                    failures.append(f"{direction} {out}: now raises Unsupported("
                                    f"{got.divergence_id!r}); stored {s}")
                continue
            if out not in want:
                failures.append(f"{direction} {out}: stored as divergence "
                                f"{s.get('divergence')!r} with no output, now computes one")
                continue
            try:
                compare(out, got, want[out], atol.get(out, 0.0))
            except Mismatch as exc:
                failures.append(f"{direction} {out}: {exc}")
    assert not failures, (f"drift: {where}:\n" + "\n".join(failures)
                          + "\n(if the new output is right, regenerate the fixtures)")
    if other_cpu and not compared:
        pytest.skip(f"{name}: {framework} computes {', '.join(other_cpu)} on one kind of CPU "
                    f"and refuses it on the other ({varies}): nothing to compare here")
    if not compared:
        pytest.skip(f"{name}: no {framework} output stored (generated with --allow-missing)")


# --------------------------------------------------------------------------------------------
# verify reports every kind of damage by file name


@pytest.fixture
def fixture_copy(tmp_path: Path) -> Path:
    """A private copy of the stored fixtures (the real ones are never touched)."""
    if not NAMES:
        pytest.fail(f"no readable manifest in {FIXTURES}")
    return Path(shutil.copytree(FIXTURES, tmp_path / "fixtures"))


def _flip(path: Path, position: int) -> None:
    content = bytearray(path.read_bytes())
    content[position % len(content)] ^= 0xFF
    path.write_bytes(bytes(content))


def test_a_flipped_byte_in_any_data_file_is_reported_by_name(fixture_copy):
    manifest = fs.load_manifest(fixture_copy)
    for entry in manifest["cases"]:  # a different position in each file: header, data, index
        _flip(fixture_copy / entry["file"], zlib.crc32(entry["name"].encode()))
    problems = "\n".join(fs.verify(fixture_copy))
    for entry in manifest["cases"]:
        assert str(fixture_copy / entry["file"]) in problems
        with pytest.raises(fs.FixtureError, match=entry["name"]):
            fs.load_case(fixture_copy, entry)


def test_verify_command_fails_naming_a_flipped_file(fixture_copy, capsys):
    entry = ENTRIES[NAMES[len(NAMES) // 2]]
    _flip(fixture_copy / entry["file"], 200)
    assert fixtures_cli.main(["verify", str(fixture_copy)]) == 1
    err = capsys.readouterr().err
    assert f"{fixture_copy / entry['file']}: altered" in err


def test_verify_reports_missing_extra_and_edited_files(fixture_copy):
    missing, other = ENTRIES[NAMES[0]]["file"], ENTRIES[NAMES[1]]["file"]
    (fixture_copy / missing).unlink()
    (fixture_copy / "data" / "stray.npz").write_bytes(b"not listed")
    (fixture_copy / "notes.txt").write_text("extra")
    shutil.copyfile(fixture_copy / other, fixture_copy / "data" / "copy.npz")
    problems = "\n".join(fs.verify(fixture_copy))
    assert f"{fixture_copy / missing}: missing" in problems
    for extra in ("data/stray.npz", "notes.txt", "data/copy.npz"):
        assert f"{fixture_copy / extra}: extra file" in problems

    manifest_path = fixture_copy / fs.MANIFEST_NAME
    manifest_path.write_text(manifest_path.read_text().replace('"format"', '  "format"', 1))
    assert "not in canonical form" in "\n".join(fs.verify(fixture_copy))


def test_verify_reports_a_truncated_file_and_a_wrong_schema(fixture_copy):
    entry = ENTRIES[NAMES[-1]]
    path = fixture_copy / entry["file"]
    path.write_bytes(path.read_bytes()[:-10])
    assert any(str(path) in p for p in fs.verify(fixture_copy))
    manifest = fs.load_manifest(fixture_copy)
    manifest["cases"][0]["results"]["torch"]["forward"] = {}
    manifest["cases"][1]["dtype"] = "float8_e4m3"
    low = next(e for e in manifest["cases"] if e["dtype"] == "bfloat16")
    low["values"] = None
    (fixture_copy / fs.MANIFEST_NAME).write_bytes(fs.manifest_bytes(manifest))
    problems = "\n".join(fs.verify(fixture_copy))
    assert repr(manifest["cases"][0]["name"]) in problems and "results" in problems
    assert "'float8_e4m3' not in" in problems
    assert f"case {low['name']!r}: values must be" in problems


def test_duplicate_case_names_are_an_error(fixture_copy):
    with pytest.raises(ValueError, match=r"duplicate.*'a'"):
        fg.check_unique_names(["a", "b", "a"])
    twice = [("pad-x", PoolCase((1, 1, 2, 2), 2)), ("pad-x", PoolCase((1, 1, 2, 2), 2))]
    with pytest.raises(ValueError, match=r"duplicate.*pad-x-f32"):
        fg.build_cases([], twice)
    with pytest.raises(ValueError, match="duplicate"):
        fg.build_cases([*HAND_CASES, HAND_CASES[0]], [])
    manifest = fs.load_manifest(fixture_copy)
    manifest["cases"].insert(1, manifest["cases"][0])
    (fixture_copy / fs.MANIFEST_NAME).write_bytes(fs.manifest_bytes(manifest))
    assert any("duplicate case name" in p and NAMES[0] in p for p in fs.verify(fixture_copy))
    (fixture_copy / fs.MANIFEST_NAME).write_text('{"format": 1, "format": 2}')
    with pytest.raises(fs.FixtureError, match="duplicate JSON key"):
        fs.load_manifest(fixture_copy)


def test_expected_differences_name_registered_divergences():
    case = PoolCase((1, 1, 2, 2), 2)
    with pytest.raises(ValueError, match="registered divergence"):
        fg.build_cases([], [("p", case)], {"p-f32": {"torch": "no-such-divergence"}})
    with pytest.raises(ValueError, match="unknown case"):
        fg.build_cases([], [("p", case)], {"q-f32": {"torch": "max-pool-nan"}})
    built = {fc.name: fc for fc in fg.build_cases([], [("p", case)],
                                                 {"p-f32": {"torch": "max-pool-nan"}})}
    assert sorted(built) == ["p-bf16", "p-f16", "p-f32", "p-f64"]
    assert dict(built["p-f32"].differs) == {"torch": "max-pool-nan"}
    assert not built["p-f64"].differs and built["p-bf16"].values is not None


# --------------------------------------------------------------------------------------------
# deterministic writing (regeneration with every framework is `tox -e fixtures`)

SYNTHETIC = {
    "inputs/x": np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7,
    "nnref/forward/indices": np.array([[3, -1], [0, 2]], dtype=np.int64),
    "nnref/forward/y": np.linspace(-1, 1, 6).reshape(2, 3),
}


def test_npz_writer_is_byte_for_byte_deterministic(monkeypatch):
    first = fs.npz_bytes(SYNTHETIC)
    monkeypatch.setattr(time, "time", lambda: 2.0e9)
    monkeypatch.setattr(time, "localtime", lambda *_: time.gmtime(2.0e9))
    reordered = dict(reversed(list(SYNTHETIC.items())))
    assert fs.npz_bytes(reordered) == first
    other_layout = {k: np.asfortranarray(v).astype(v.dtype.newbyteorder(">"))
                    for k, v in SYNTHETIC.items()}
    assert fs.npz_bytes(other_layout) == first
    with zipfile.ZipFile(io.BytesIO(first)) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == sorted(f"{k}.npy" for k in SYNTHETIC)
    assert all(i.date_time == fs.ZIP_DATE and i.compress_type == zipfile.ZIP_STORED
               for i in infos)
    back = fs.read_npz(first)
    assert sorted(back) == sorted(SYNTHETIC)
    for k, v in SYNTHETIC.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v)
    with pytest.raises(TypeError):
        fs.npz_bytes({"bad": np.array([object()])})


def test_manifest_writer_is_canonical():
    manifest = {"b": [1, 2, {"z": 1.5, "a": None}], "a": {"y": [0, 1], "x": "text"}}
    text = fs.manifest_bytes(manifest)
    assert text.endswith(b"}\n") and text == fs.manifest_bytes(json.loads(text))
    assert json.loads(text) == manifest
    assert fs.manifest_bytes(dict(reversed(list(manifest.items())))) == text
    with pytest.raises(ValueError):
        fs.manifest_bytes({"x": float("nan")})


def _frameworkless() -> dict[str, Any]:
    return {"nnref": nnref, **dict.fromkeys(fs.FRAMEWORKS)}


SMALL = [fc for fc in fg.fixture_cases()
         if fc.name in {"hand-pad_constant_value-f32", "conv2d-same-stride2-f64",
                        "max_pool2d-ties-k3-s1-f32", "batch_norm-eval-f64",
                        "linear-batch-bias-bf16", "max_pool2d-k2-default-stride-f16"}]


def test_regeneration_is_deterministic_and_atomic(tmp_path, monkeypatch):
    """Regenerate a few cases without frameworks (recorded absent) into fresh directories."""
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = fg.regenerate(one, _frameworkless(), SMALL)
    fg.regenerate(two, _frameworkless(), SMALL)
    assert not r1.disagreements and sorted(r1.added) == sorted(fc.name for fc in SMALL)
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    for rel in files:
        assert (one / rel).read_bytes() == (two / rel).read_bytes(), rel
    assert fs.verify(one) == []
    entry = fs.load_manifest(one)["cases"][0]
    assert entry["versions"]["torch"] == fs.ABSENT
    assert {s["status"] for s in entry["results"]["torch"]["forward"].values()} == {fs.ABSENT}

    # Regenerating over existing fixtures replaces them; an interrupted run changes nothing.
    (one / "data" / "stale.npz").write_bytes(b"old")
    assert fg.regenerate(one, _frameworkless(), SMALL).changed == []
    assert not (one / "data" / "stale.npz").exists() and fs.verify(one) == []
    before = {p: p.read_bytes() for p in one.rglob("*") if p.is_file()}
    calls = []

    def interrupted(fc, *args):
        calls.append(fc.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(fc, *args)

    original = fg.generate_case
    monkeypatch.setattr(fg, "generate_case", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fg.regenerate(one, _frameworkless(), SMALL)
    monkeypatch.undo()

    def interrupted_while_writing(directory, *args):
        (directory / "data").mkdir()
        (directory / "data" / "partial.npz").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(fg, "write_tree", interrupted_while_writing)
    with pytest.raises(KeyboardInterrupt):
        fg.regenerate(one, _frameworkless(), SMALL)
    assert {p: p.read_bytes() for p in one.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # no staging left


def test_a_disagreeing_framework_writes_nothing(tmp_path):
    """A backend that differs beyond tolerance (and is not a registered divergence) is refused."""

    class Skewed:
        def __getattr__(self, attr):
            fn = getattr(nnref, attr)
            if not callable(fn):  # its declarations (CONFORMANCE_ACCUMULATION)
                return fn

            def call(*args, **kwargs):
                out = fn(*args, **kwargs)
                first = out[0] if isinstance(out, tuple) else out
                first.flat[0] += 1.0
                return out
            return call

    backends = {**_frameworkless(), "torch": Skewed()}
    result = fg.regenerate(tmp_path / "out", backends, SMALL)
    assert result.manifest is None and not (tmp_path / "out").exists()
    assert {d.case for d in result.disagreements} == {fc.name for fc in SMALL}
    assert all(d.backend == "torch" for d in result.disagreements)


def test_regenerate_command_needs_every_framework(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fg, "load_backends", lambda: (_frameworkless(), list(fs.FRAMEWORKS)))
    assert fixtures_cli.main(["regenerate", "--out", str(tmp_path / "out")]) == 2
    assert "--allow-missing" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
