#!/usr/bin/env python3
"""Regenerate (or check) every command output shown in README.md.

An output block in the README is a fenced block preceded by a marker line naming the command
that prints it, run with bash from the checkout's root::

    <!-- output: python -m conformance --version -->
    ```
    nnref conformance 0.1.0
    ```

``python tools/readme_outputs.py`` reruns every marked command (``python`` is this interpreter;
the checkout's ``impl`` and root come first on ``PYTHONPATH``; ``NNREF_PROFILE=ci``, so Hypothesis
is derandomised) and writes what it prints into the block; durations (``in 12.3s``) are
dropped, as they change from run to run. ``--check`` only compares and exits 1 naming each block
that differs; ``--only SUBSTRING`` limits either to the markers containing it. Commands that need
torch and TensorFlow (the diff excerpt) need an interpreter that has them, e.g.
``.tox/diff/bin/python tools/readme_outputs.py``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKER = re.compile(r"^<!-- output: (?P<command>.+?) -->\n```[a-z]*\n(?P<body>.*?)^```$",
                    re.M | re.S)
DURATION = re.compile(r" in \d+(\.\d+)?s( \(\d+:\d\d:\d\d\))?")


@dataclass(frozen=True)
class Block:
    command: str
    body: str
    start: int  # offsets of the body in the README text
    end: int


def blocks(text: str) -> list[Block]:
    """Every marked output block of ``text``, in order."""
    return [Block(m["command"], m["body"], m.start("body"), m.end("body"))
            for m in MARKER.finditer(text)]


def normalise(output: str) -> str:
    """What the README shows of an output: no durations, no trailing blanks."""
    lines = [DURATION.sub("", line).rstrip() for line in output.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def run(command: str, timeout: float = 1800) -> str:
    """The command's output (stdout and stderr), run as the README says, from the root."""
    env = dict(os.environ, NNREF_PROFILE="ci", COLUMNS="100",
               PYTHONPATH=os.pathsep.join([str(ROOT / "impl"), str(ROOT)]))
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    shell = f"python() {{ {sys.executable} \"$@\"; }}; {command}"
    done = subprocess.run(["bash", "-c", shell], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    return normalise(done.stdout + done.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on drift")
    parser.add_argument("--only", default="", metavar="SUBSTRING",
                        help="only the blocks whose command contains SUBSTRING")
    args = parser.parse_args(argv)
    text = README.read_text()
    chosen = [b for b in blocks(text) if args.only in b.command]
    if not chosen:
        print(f"no output block in {README.name} matches {args.only!r}", file=sys.stderr)
        return 2
    drift = []
    for block in reversed(chosen):  # from the end, so the offsets stay valid
        fresh = run(block.command)
        if fresh != block.body:
            drift.append(block.command)
            text = text[:block.start] + fresh + text[block.end:]
    if args.check:
        for command in reversed(drift):
            print(f"README.md: the output of `{command}` has changed", file=sys.stderr)
        return 1 if drift else 0
    README.write_text(text)
    print(f"{len(chosen)} blocks rerun, {len(drift)} updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
