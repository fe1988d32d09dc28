"""The exceptions and warnings of the package.

Every failure of a library call raises Error with the library's one-line
message and its code (the command line's exit status): InputError (2) for
bad options, values, files or data, RunError (1) for a failure at run time.
"""

PF_ERUNTIME = 1
PF_EINPUT = 2


class Error(Exception):
    """A failed pathfinder call: .code (1 runtime, 2 bad input), .message
    (one line), and .report (the part of the JSON report the call got
    through before failing, e.g. the seeds trained, or None)."""

    code = PF_ERUNTIME

    def __init__(self, message, code=None, report=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.report = report


class InputError(Error, ValueError):
    """Bad input: an unknown option, a bad value, a missing or malformed file."""

    code = PF_EINPUT


class RunError(Error, RuntimeError):
    """A failure while running: out of memory, a diverged training, a write error."""

    code = PF_ERUNTIME


class PathfinderWarning(UserWarning):
    """A warning the library gave during a call (PF_EVENT_WARNING)."""


def error_for(code, message, report=None):
    """The exception for a library return code."""
    if code == PF_EINPUT:
        return InputError(message, code, report)
    return RunError(message, code if code else PF_ERUNTIME, report)
