"""Running other people's code safely: every call bounded, the whole check in its own process.

Inside the check (:func:`guarded_call`, used by ``ImplUnderTest`` for every call of a contract
function of the implementation under test):

- a wall-clock limit per call (:data:`CALL_TIMEOUT_ENV`, seconds; off when unset): a call that
  does not return raises :class:`CallTimedOut`, and later calls of the same function fail at
  once instead of hanging again (Hypothesis replays failing examples);
- ``sys.exit()`` / ``exit()`` inside the call becomes :class:`ExitedInterpreter`;
- what the call prints is counted, not shown; more than :data:`OUTPUT_LIMIT_ENV` characters
  (default 1 MB) raises :class:`PrintedTooMuch`;
- array arguments changed in place raise :class:`MutatedInput`;
- a function an earlier attempt of this check found crashing the process or hanging beyond
  interruption (:data:`BROKEN_ENV`, set by the parent) raises :class:`BrokeTheCheck` at once.

Each is an ``Exception`` raised by the contract function, so the suite reports it as that
function's failure, in the user's words (conformance.verdicts).

Around the check (:func:`run_isolated`, used by ``python -m conformance check``): the suite runs
in a child process with a memory limit (``resource.setrlimit(RLIMIT_AS)``) and a wall-clock
limit; when the child dies (``os._exit``, a segfault, the memory limit) or overruns, the function
it was calling (:data:`PROGRESS_ENV`) is marked broken and the check runs again without calling
it, so the run and its report survive.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CALL_TIMEOUT_ENV = "NNREF_CALL_TIMEOUT"
OUTPUT_LIMIT_ENV = "NNREF_OUTPUT_LIMIT"
BROKEN_ENV = "NNREF_BROKEN_FUNCTIONS"  # JSON: {function: why}
PROGRESS_ENV = "NNREF_PROGRESS_FILE"  # the child writes the function it is calling here
SANDBOXED_ENV = "NNREF_SANDBOXED"  # set in the child: run the suite in this process

DEFAULT_OUTPUT_LIMIT = 1_000_000


class CallTimedOut(Exception):
    """The call did not return within the per-call limit."""


class ExitedInterpreter(Exception):
    """The call tried to end the interpreter (sys.exit, exit, quit)."""


class PrintedTooMuch(Exception):
    """The call printed more than the output limit."""


class MutatedInput(Exception):
    """The call changed one of its array arguments in place."""


class BrokeTheCheck(Exception):
    """An earlier attempt of this check found the function crashing or hanging the process."""


_TIMED_OUT: dict[str, str] = {}  # function -> the message of its first timeout
_PROGRESS: dict[str, Any] = {"last": None}


def _broken() -> dict[str, str]:
    text = os.environ.get(BROKEN_ENV)
    return json.loads(text) if text else {}


class _CountingSink(io.TextIOBase):
    """Swallows text, counting characters."""

    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.count += len(text)
        return len(text)


@contextlib.contextmanager
def _wall_clock_limit(seconds: float, message: str) -> Iterator[None]:
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise CallTimedOut(message)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _note_progress(function: str) -> None:
    path = os.environ.get(PROGRESS_ENV)
    if path and _PROGRESS["last"] != function:
        _PROGRESS["last"] = function
        with open(path, "w", encoding="utf-8") as f:
            f.write(function)


def _arrays(args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    named = [(f"argument {i + 1}", a) for i, a in enumerate(args)] + list(kwargs.items())
    return [(name, a, a.copy()) for name, a in named if isinstance(a, np.ndarray)]


def guarded_call(function: str, fn: Callable[..., Any], args: Sequence[Any],
                 kwargs: Mapping[str, Any]) -> Any:
    """Call ``fn`` (the contract function ``function`` of the code under test) within bounds."""
    broken = _broken()
    if function in broken:
        raise BrokeTheCheck(broken[function])
    if function in _TIMED_OUT:
        raise CallTimedOut(_TIMED_OUT[function] + " (an earlier call; not called again)")
    _note_progress(function)
    seconds = float(os.environ.get(CALL_TIMEOUT_ENV) or 0)
    limit = int(os.environ.get(OUTPUT_LIMIT_ENV) or DEFAULT_OUTPUT_LIMIT)
    before = _arrays(args, kwargs)
    sink = _CountingSink()
    message = f"{function} did not return within {seconds:g} s"
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), \
                _wall_clock_limit(seconds, message):
            result = fn(*args, **kwargs)
    except CallTimedOut:
        _TIMED_OUT[function] = message
        raise
    except SystemExit as exc:
        raise ExitedInterpreter(f"{function} tried to end the interpreter "
                                f"(SystemExit({exc.code!r}): sys.exit, exit or quit)") from None
    finally:
        if sink.count > limit:  # reported even when the call also failed otherwise
            raise PrintedTooMuch(f"{function} printed {sink.count} characters (the limit is "
                                 f"{limit}; {OUTPUT_LIMIT_ENV})")
    for name, now, then in before:
        if now.shape != then.shape or not np.array_equal(now, then, equal_nan=True):
            raise MutatedInput(f"{function} changed its input {name} in place")
    return result


# --- the parent side -------------------------------------------------------------------------


@dataclass
class IsolatedRun:
    """What happened to the child processes of one check."""

    status: int  # the last child's exit status (negative: killed by that signal)
    broken: dict[str, str] = field(default_factory=dict)  # function -> why it was not called
    attempts: int = 1
    problem: str = ""  # set when the check could not finish at all


def _limit_memory(megabytes: int) -> Callable[[], None]:
    def apply() -> None:
        os.setsid()  # its own process group: a timeout ends the child and what it started
        if megabytes > 0:
            import resource

            size = megabytes * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    return apply


def run_isolated(command: Sequence[str], env: Mapping[str, str], timeout: float,
                 memory_mb: int, progress_file: str, result_file: str,
                 max_attempts: int = 4) -> IsolatedRun:
    """Run ``command`` (the check, in a child) with a memory and a wall-clock limit; when the
    child dies or overruns inside a function of the code under test, mark it and run again.
    A child that ends without writing ``result_file`` after calling the code under test
    crashed, whatever its exit status (``os._exit(0)`` included)."""
    broken: dict[str, str] = {}
    run = IsolatedRun(status=0)
    for attempt in range(1, max_attempts + 1):
        child_env = dict(env)
        child_env[BROKEN_ENV] = json.dumps(broken)
        child_env[PROGRESS_ENV] = progress_file
        for stale in (progress_file, result_file):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stale)
        started = time.monotonic()
        proc = subprocess.Popen(list(command), env=child_env,
                                preexec_fn=_limit_memory(memory_mb))
        overran = False

        def stop_child(signum: int, frame: Any, group: int = proc.pid) -> None:
            with contextlib.suppress(ProcessLookupError):  # the parent stopped: the child too
                os.killpg(group, signal.SIGKILL)
            raise KeyboardInterrupt(f"signal {signum}")

        previous = signal.signal(signal.SIGTERM, stop_child)
        try:
            status = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            overran = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            status = proc.wait()
        except KeyboardInterrupt:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            proc.wait()
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
        run.status, run.attempts = status, attempt
        try:
            with open(progress_file, encoding="utf-8") as f:
                function = f.read().strip()
        except FileNotFoundError:
            function = ""
        # pytest's own statuses are 0..5; it writes the result file at the end of every run
        crashed = status < 0 or status > 5 or (bool(function)
                                                and not os.path.exists(result_file))
        if not overran and not crashed:
            break
        if overran:
            why = (f"the check was stopped after {time.monotonic() - started:.0f} s (the "
                   f"--timeout) while {function or 'the code under test'} was running")
        else:
            how = f"signal {-status}" if status < 0 else f"exit status {status}"
            why = (f"the process ended ({how}: os._exit, a crash or the memory limit) while "
                   f"{function or 'the code under test'} was running")
        if not function or function in broken:
            run.problem = why
            break
        broken[function] = why
        sys.stderr.write(f"{why}; checking again without calling {function}\n")
    run.broken = broken
    return run
