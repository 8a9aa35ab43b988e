"""What a backend raises for a configuration it cannot express (the suite's engines catch it).

It lives below the engines and the backends: the runner catches it, every adapter raises it
(``conformance.backends`` exports it for them).
"""

from __future__ import annotations


class Unsupported(Exception):
    """A configuration the framework cannot express, even by composition.

    `divergence_id` names the entry in conformance/divergences.toml that explains why.
    """

    def __init__(self, divergence_id: str, message: str = "") -> None:
        self.divergence_id = divergence_id
        self.message = message
        super().__init__(f"[{divergence_id}] {message}" if message else f"[{divergence_id}]")
