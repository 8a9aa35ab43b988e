"""nnref's conformance suite: cases, strategies, tolerances, framework adapters and commands."""
