# The source of an nbgrader autograded test cell (cell metadata: "nbgrader": {"grade": true,
# "solution": false, "locked": true, "points": 4, "grade_id": "layers"}).
# Its last expression is the points earned (nbgrader gives at most the cell's points); it writes
# nothing to stdout or stderr, which nbgrader would count as an error (0 points).
from conformance.graders import score

score("homework.ipynb", require="none")
