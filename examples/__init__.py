"""Example implementations to run the suite against (``pytest --impl examples.MODULE``)."""
