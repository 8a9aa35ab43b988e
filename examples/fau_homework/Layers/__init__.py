"""An FAU-style ``Layers`` package: correct stateful layers, written for the nnref examples.

    python -m conformance check examples/fau_homework --api fau -m values     # exit 0

The folders ``bug_*/`` next to this one hold the same package, each with one realistic bug.
"""
