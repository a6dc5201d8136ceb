"""The error types shared across flatgroove, in one leaf module that imports nothing else of
the package, so that library code (live ports, controls, MIDI, data) can raise a user's error
without importing the command line.

Every one of them is an error the user can fix: the command line prints its message as one
line and exits with status 2 (`USER_ERRORS`)."""

from __future__ import annotations


class UserError(Exception):
    """An error the user can fix; printed as one line, exit status 2."""


class GrooveError(ValueError):
    """A Groove's arrays are not valid; the message says which and why."""


class MidiError(ValueError):
    """A MIDI file cannot be used; the message names the file and the reason."""


class DatasetError(ValueError):
    """A dataset cannot be built; the message says why and where."""


class CheckpointError(ValueError):
    """A file is not a usable flatgroove checkpoint; the message says why."""


class GenerateError(ValueError):
    """A generation request cannot be met; the message says why."""


class AudioError(RuntimeError):
    """Audio cannot be rendered or written; the message says why and what to do."""


# What the command line reports as one line (exit status 2) instead of a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError, GrooveError, MidiError, DatasetError, CheckpointError, GenerateError, AudioError,
    FileNotFoundError,
)

__all__ = [
    "USER_ERRORS",
    "AudioError",
    "CheckpointError",
    "DatasetError",
    "GenerateError",
    "GrooveError",
    "MidiError",
    "UserError",
]
