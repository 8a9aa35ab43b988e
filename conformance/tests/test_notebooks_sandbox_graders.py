"""Checking students' code as course staff do: notebooks, hostile submissions, grader files.

Each check runs ``python -m conformance check`` in a subprocess from an empty directory, on the
hand cases of relu / sigmoid / elu only (seconds, not minutes):

- a notebook with a magic, a ``%%writefile`` cell, a ``!`` line and a function reading a global
  a later cell defines is checked correctly; a cell that raises is reported with its number and
  the rest still loads; an nbgrader test cell is left out on request; the notebook's prints stay
  out of the report;
- a submission that hangs, exits the interpreter, prints megabytes, mutates its input, kills
  its process or asks for more memory than the limit gets a verdict per function saying so, and
  the run, its verdicts file and its Gradescope / PrairieLearn files survive (validated against
  the documented schemas);
- ``conformance.graders.score`` returns points or raises, and writes nothing to stdout or stderr.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .. import graders
from ..notebook import is_grader_cell
from .test_plugin_and_commands import _env

nbformat = pytest.importorskip("nbformat", reason="notebook targets need nbformat (the "
                               "'notebook' extra)")
pytest.importorskip("IPython", reason="notebook targets need IPython (the 'notebook' extra)")

HAND_CASES = "test_hand_case and (relu or sigmoid or elu)"


def _check(tmp_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance", "check", *args],
                          cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True,
                          timeout=timeout)


def _notebook(path: Path) -> None:
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    grader = {"nbgrader": {"grade": True, "solution": False, "points": 1, "grade_id": "t"}}
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell("# Layers"),
        new_code_cell("import numpy as np\n%time setup_done = True"),
        new_code_cell("%%writefile helper_relu.py\nimport nnref\n\ndef relu_impl(x):\n"
                      "    return nnref.relu(x)\n"),
        new_code_cell("files = !ls\nHAS_HELPER = 'helper_relu.py' in files\n"
                      "import helper_relu\nprint('NOTEBOOK-NOISE ' * 1000)"),
        new_code_cell("def relu(x):\n    assert setup_done and HAS_HELPER\n"
                      "    return helper_relu.relu_impl(x)\n\n"
                      "def relu_backward(dy, x):\n    return np.where(x > 0, dy, 0) * SCALE\n"),
        new_code_cell("undefined_name + 1  # a broken cell"),
        new_code_cell("SCALE = 1.0"),
        new_code_cell("raise AssertionError('the grader cell ran')", metadata=grader),
    ]
    nbformat.write(nb, str(path))


def test_a_notebook_is_checked_as_jupyter_runs_it(tmp_path):
    _notebook(tmp_path / "homework.ipynb")
    run = _check(tmp_path, "homework.ipynb", "--skip-grader-cells", "-m", "values",
                 "-k", "test_hand_case and relu", "--verdicts-json", "v.json", "-q")
    verdicts = json.loads((tmp_path / "v.json").read_text())
    found = {(r["function"], r["direction"]): r["values"] for r in verdicts["functions"]}
    assert found == {("relu", "forward"): "conforms", ("relu_backward", "backward"): "conforms"}, \
        run.stdout[-3000:]
    assert run.returncode == 1, run.stdout[-3000:]  # a cell failed: the notebook is broken
    errors = verdicts["notebook_cell_errors"]
    assert len(errors) == 1 and errors[0].startswith("cell 6 ('undefined_name + 1"), errors
    assert "NameError" in errors[0]
    assert "cell 6" in run.stdout  # in the report's header too
    assert "NOTEBOOK-NOISE" not in run.stdout + run.stderr
    assert (tmp_path / "helper_relu.py").is_file()  # %%writefile wrote next to the notebook


def test_grader_cells_are_recognised():
    assert is_grader_cell({"cell_type": "code", "source": "assert f(1) == 2",
                           "metadata": {"nbgrader": {"grade": True, "solution": False}}})
    assert not is_grader_cell({"cell_type": "code", "source": "def f(x): ...",
                               "metadata": {"nbgrader": {"grade": True, "solution": True}}})
    assert is_grader_cell({"cell_type": "code", "source": "# IGNORE\nprint(1)", "metadata": {}})
    assert is_grader_cell({"cell_type": "code", "source": "x = 1",
                           "metadata": {"otter": {"ignore": True}}})
    assert not is_grader_cell({"cell_type": "code", "source": "x = 1", "metadata": {}})


HOSTILE = '''
import os
import sys
import time

import numpy as np


def relu(x):  # hangs
    while True:
        time.sleep(0.01)


def sigmoid(x):  # ends the interpreter
    sys.exit(3)


def elu(x, alpha=1.0):  # prints megabytes
    print("x" * 2_000_000)
    return np.where(x > 0, x, alpha * np.expm1(x))


def relu_backward(dy, x):  # changes its input in place
    dy[x <= 0] = 0
    return dy


def sigmoid_backward(dy, x):  # ends its process without a word
    os._exit(0)
'''


def _validate(value: Any, schema: dict[str, Any], where: str = "$") -> None:
    """A small validator for the schemas below (type, required, enum, minimum, items)."""
    kinds = {"object": dict, "array": list, "string": str, "number": (int, float),
             "boolean": bool}
    assert isinstance(value, kinds[schema["type"]]), f"{where}: not {schema['type']}"
    assert value in schema.get("enum", [value]), f"{where}: {value!r} not allowed"
    if "minimum" in schema:
        assert value >= schema["minimum"], f"{where}: below {schema['minimum']}"
    if "maximum" in schema:
        assert value <= schema["maximum"], f"{where}: above {schema['maximum']}"
    for key in schema.get("required", ()):
        assert key in value, f"{where}: {key} missing"
    for key, sub in schema.get("properties", {}).items():
        if key in value:
            _validate(value[key], sub, f"{where}.{key}")
    if schema["type"] == "object" and "properties" in schema:
        unknown = set(value) - set(schema["properties"])
        assert not unknown, f"{where}: undocumented keys {unknown}"
    for i, item in enumerate(value if "items" in schema else ()):
        _validate(item, schema["items"], f"{where}[{i}]")


_VISIBILITY = {"type": "string", "enum": list(graders.VISIBILITIES)}
_FORMAT = {"type": "string", "enum": ["text", "simple_format", "html", "md", "ansi"]}
# https://gradescope-autograders.readthedocs.io/en/latest/specs/ (results.json)
GRADESCOPE_SCHEMA = {"type": "object", "required": ["tests"], "properties": {
    "score": {"type": "number"}, "execution_time": {"type": "number"},
    "output": {"type": "string"}, "output_format": _FORMAT, "visibility": _VISIBILITY,
    "stdout_visibility": _VISIBILITY, "extra_data": {"type": "object"},
    "leaderboard": {"type": "array"},
    "tests": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
        "score": {"type": "number", "minimum": 0}, "max_score": {"type": "number", "minimum": 0},
        "status": {"type": "string", "enum": ["passed", "failed"]}, "name": {"type": "string"},
        "name_format": _FORMAT, "number": {"type": "string"}, "output": {"type": "string"},
        "output_format": _FORMAT, "tags": {"type": "array"}, "visibility": _VISIBILITY,
        "extra_data": {"type": "object"}}}}}}
# PrairieLearn docs/externalGrading.md
PRAIRIELEARN_SCHEMA = {"type": "object", "required": ["score"], "properties": {
    "score": {"type": "number", "minimum": 0, "maximum": 1}, "gradable": {"type": "boolean"},
    "message": {"type": "string"}, "output": {"type": "string"},
    "tests": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "description": {"type": "string"},
        "points": {"type": "number", "minimum": 0}, "max_points": {"type": "number"},
        "message": {"type": "string"}, "output": {"type": "string"}}}}}}


def test_hostile_submissions_get_verdicts_and_the_run_survives(tmp_path):
    (tmp_path / "hostile.py").write_text(HOSTILE)
    run = _check(tmp_path, "hostile.py", "-m", "values", "-k", HAND_CASES, "-q",
                 "--call-timeout", "2", "--verdicts-json", "v.json", "--gradescope", "gs.json",
                 "--prairielearn", "pl.json", "--points", "2", "--points", "relu (forward)=5")
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]
    verdicts = json.loads((tmp_path / "v.json").read_text())
    messages = {(r["function"], r["direction"]): r["failures"][0]["message"]
                for r in verdicts["functions"] if r["failures"]}
    assert messages[("relu", "forward")].startswith("CallTimedOut: relu did not return")
    assert messages[("sigmoid", "forward")].startswith("ExitedInterpreter:")
    assert messages[("elu", "forward")].startswith("PrintedTooMuch: elu printed 2000001")
    assert messages[("relu_backward", "backward")].startswith("MutatedInput: relu_backward changed")
    assert messages[("sigmoid_backward", "backward")].startswith("BrokeTheCheck: the process ended")
    assert "sigmoid_backward" in verdicts["broken"]
    assert "checking again without calling sigmoid_backward" in run.stderr

    gradescope = json.loads((tmp_path / "gs.json").read_text())
    _validate(gradescope, GRADESCOPE_SCHEMA)
    tests = {t["name"]: t for t in gradescope["tests"]}
    assert tests["relu (forward)"]["max_score"] == 5 and tests["elu (forward)"]["max_score"] == 2
    assert all(t["status"] == "failed" and t["score"] == 0 for t in tests.values())
    assert "did not return within 2 s" in tests["relu (forward)"]["output"]
    prairielearn = json.loads((tmp_path / "pl.json").read_text())
    _validate(prairielearn, PRAIRIELEARN_SCHEMA)
    assert prairielearn["score"] == 0


MEMORY_HOG = '''
import numpy as np
import nnref

def relu(x):  # asks for 3.2 GB
    return nnref.relu(x) + np.ones(400_000_000)[:0].sum()

relu_backward = nnref.relu_backward
'''


def test_the_memory_limit_turns_a_memory_hog_into_its_verdict(tmp_path):
    (tmp_path / "hog.py").write_text(MEMORY_HOG)
    run = _check(tmp_path, "hog.py", "-m", "values", "-k", "test_hand_case and relu", "-q",
                 "--memory-limit", "1200", "--verdicts-json", "v.json")
    verdicts = json.loads((tmp_path / "v.json").read_text())
    found = {r["function"]: (r["values"], [f["message"] for f in r["failures"]][:1])
             for r in verdicts["functions"]}
    assert found["relu"][0] == "fails" and found["relu"][1][0].startswith("MemoryError"), found
    assert found["relu_backward"] == ("conforms", [])
    assert run.returncode == 1


def test_a_passing_check_scores_full_marks_in_both_grader_files(tmp_path):
    verdicts = {"functions": [
        {"function": "conv_forward_naive", "contract": "conv2d", "direction": "forward",
         "values": "conforms", "arguments": "untested", "missing": [], "failures": []},
        {"function": "conv_backward_naive", "contract": "conv2d_backward",
         "direction": "backward", "values": "fails", "arguments": "untested", "missing": [],
         "failures": [{"output": "dw", "message": "dw differs", "configuration": "stride=2",
                       "reproducer": "print('rebuilt')\n"}]}]}
    points = graders.parse_points(["conv_forward_naive=3"])
    gradescope = graders.gradescope(verdicts, points, "after_published", 1.5)
    _validate(gradescope, GRADESCOPE_SCHEMA)
    assert gradescope["score"] == 3 and [t["score"] for t in gradescope["tests"]] == [3, 0]
    assert "print('rebuilt')" in gradescope["tests"][1]["output"]
    prairielearn = graders.prairielearn(verdicts, points)
    _validate(prairielearn, PRAIRIELEARN_SCHEMA)
    assert prairielearn["score"] == 0.75


CORRECT = '''
import warnings
import nnref

def relu(x):
    warnings.warn("a student's warning")
    print("a student's print")
    return nnref.relu(x)

relu_backward = nnref.relu_backward
'''


def test_score_returns_points_or_raises_and_writes_nothing(tmp_path, capfd, monkeypatch):
    (tmp_path / "good.py").write_text(CORRECT)
    (tmp_path / "bad.py").write_text(CORRECT.replace("return nnref.relu(x)", "return x"))
    for key, value in _env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    args = ("-m", "values", "-k", "test_hand_case and relu")
    assert graders.score("good.py", pytest_args=args, points=["2"]) == 4
    with pytest.raises(AssertionError, match=r"not conforming: relu \(forward\): fails"):
        graders.score("bad.py", pytest_args=args)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_check_usage_errors_are_one_line_and_exit_2(tmp_path):
    for args in (["x.py", "--timeout", "soon"], ["x.py", "--points", "conv=lots"],
                 ["x.py", "--visibility", "everyone"], ["x.py", "--gradescope"]):
        run = _check(tmp_path, *args, timeout=60)
        assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr


def _examples() -> Path:
    from ..paths import checkout_root

    root = checkout_root()
    assert root is not None
    return root / "examples" / "graders"


@pytest.mark.checkout
def test_the_gradescope_run_autograder_example_writes_valid_results(tmp_path):
    from ..paths import checkout_root

    submission = checkout_root() / "examples" / "cs231n_homework"
    env = dict(_env(tmp_path), SUBMISSION_DIR=str(submission), RESULTS_DIR=str(tmp_path / "r"))
    run = subprocess.run(["bash", str(_examples() / "run_autograder"), "-q",
                          "-k", "test_hand_case and linear"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    _validate(results, GRADESCOPE_SCHEMA)
    tests = {t["name"]: t for t in results["tests"]}
    assert tests["affine_forward (forward)"]["status"] == "passed", tests
    assert tests["affine_backward (backward)"]["score"] == 1
    assert tests["conv_forward_naive (forward)"]["score"] == 0  # not checked by this -k
    assert all(t["visibility"] == "after_published" for t in tests.values())


@pytest.mark.checkout
def test_the_otter_and_nbgrader_examples_score_a_notebook_silently(tmp_path, capfd,
                                                                    monkeypatch):
    import importlib.util
    import types

    _notebook(tmp_path / "homework.ipynb")
    for key, value in _env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(graders.GRADER_ARGS_ENV, "-m values -k 'test_hand_case and relu'")
    monkeypatch.chdir(tmp_path)
    # Otter's decorator, as its documentation describes it: registers the test, returns it
    otter = types.ModuleType("otter")
    otter.test_files = types.ModuleType("otter.test_files")
    otter.test_files.test_case = lambda **options: (lambda fn: fn)
    monkeypatch.setitem(sys.modules, "otter", otter)
    monkeypatch.setitem(sys.modules, "otter.test_files", otter.test_files)
    spec = importlib.util.spec_from_file_location("otter_layers_test",
                                                  _examples() / "otter_layers_test.py")
    test_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test_file)
    assert test_file.OK_FORMAT is False and test_file.points == 4
    test_file.test_layers({})  # raises when a layer does not conform

    cell = (_examples() / "nbgrader_test_cell.py").read_text().rstrip().splitlines()
    namespace: dict[str, Any] = {}
    exec("\n".join(cell[:-1]), namespace)
    assert eval(cell[-1], namespace) == 2  # relu forward and backward, a point each
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_class_mode_checks_every_submission_and_resumes(tmp_path):
    import csv

    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "ada.py").write_text(CORRECT)
    (folder / "bob.py").write_text(CORRECT.replace("return nnref.relu(x)", "return x"))
    (folder / "eve.py").write_text("raise SystemExit('not even importable')\n")
    args = ["-m", "conformance", "class", "submissions", "--out", "out", "--jobs", "2",
            "-m", "values", "-k", "test_hand_case and relu", "--points", "2"]
    run = subprocess.run([sys.executable, *args], cwd=tmp_path, env=_env(tmp_path),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr  # eve's could not be checked
    assert "could not check all of eve.py" in run.stderr
    with open(tmp_path / "out" / "class.csv", newline="") as f:
        table = {(r["submission"], r["function"]): r for r in csv.DictReader(f)}
    assert table[("ada.py", "relu")]["values"] == "conforms"
    assert table[("ada.py", "relu")]["score"] == "2.0"
    assert table[("bob.py", "relu")]["values"] == "fails"
    assert table[("bob.py", "relu")]["score"] == "0.0"
    assert table[("bob.py", "relu_backward")]["values"] == "conforms"
    assert "before writing verdicts" in table[("eve.py", "")]["problem"]
    assert "3 to check" in run.stdout

    (tmp_path / "out" / "bob.py.json").unlink()  # as if interrupted during bob's check
    again = subprocess.run([sys.executable, *args], cwd=tmp_path, env=_env(tmp_path),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 1 and "2 already checked, 1 to check" in again.stdout
    assert "class: bob.py: exit status 1" in again.stdout


def test_matplotlib_inline_runs_as_in_jupyter(tmp_path):
    """Course notebooks start with `%matplotlib inline`, which Jupyter's kernel handles: so
    must the notebook runner (no GUI loop; the figure is dropped)."""
    pytest.importorskip("matplotlib", reason="the magic needs matplotlib, as in Jupyter")
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[
        new_code_cell("import numpy as np\nimport matplotlib.pyplot as plt\n%matplotlib inline\n"
                      "plt.plot([1, 2])"),
        new_code_cell("def relu(x):\n    return np.maximum(x, 0)\n"),
    ])
    nbformat.write(nb, str(tmp_path / "plots.ipynb"))
    run = _check(tmp_path, "plots.ipynb", "-m", "values", "-k", "test_hand_case and relu", "-q",
                 "--verdicts-json", "v.json")
    verdicts = json.loads((tmp_path / "v.json").read_text())
    assert run.returncode == 0 and not verdicts["notebook_cell_errors"], run.stdout[-2000:]
