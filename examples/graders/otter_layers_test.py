"""An Otter-Grader test file (exception-based format) that checks the student's layers.

Put it in the assignment's tests/ directory. Otter runs the student's notebook, then calls the
test function; it passes when every layer conforms and fails with the list of functions that do
not. The check runs in a separate, bounded process on the notebook file itself (NOTEBOOK), with
nbgrader / Otter test cells left out.
"""

from otter.test_files import test_case

from conformance.graders import score

OK_FORMAT = False

name = "layers"
points = 4
NOTEBOOK = "homework.ipynb"  # the submission's file name in the grading directory


@test_case(points=4, hidden=False)
def test_layers(env):
    score(NOTEBOOK, require="all")  # raises AssertionError naming what does not conform
