"""Root conftest: loads the conformance suite's pytest plugin so --impl works from anywhere."""

pytest_plugins = ["conformance.pytest_plugin"]
