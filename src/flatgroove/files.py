"""Writing files so that nothing is lost on a crash: every file flatgroove writes (MIDI, WAV,
PNG, checkpoints, caches, results) goes through `atomic_path`."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_PROC_STATUS = Path("/proc/self/status")


def _umask() -> int:
    """The process's umask. Linux shows it in /proc; elsewhere it can only be read by setting
    it and back, which for a moment changes it for every thread."""
    try:
        for line in _PROC_STATUS.read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _naming(e: OSError, path: Path) -> OSError:
    """The same error, naming the user's path rather than a temporary file beside it."""
    out = type(e)(e.errno, e.strerror or str(e), str(path))
    out.__cause__ = None
    return out


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A fresh temporary file beside `path` for the block to write; moved onto `path` when the
    block ends, removed if it raises, so a crash mid-write leaves the previous file whole (its
folders are made as needed).

    - the temporary name is unique (mkstemp) and keeps the suffix (writers that go by it, such
      as numpy's .npz, see the right one); two writers never share it;
    - a symlink is written through (its target changes, the link stays);
    - the file gets the mode a plain write would give (an existing file keeps its own), not
      mkstemp's 0600, which would hide a shared model from its other users;
    - errors name `path`, not the temporary file: "out.mid: Permission denied", and a folder
      at `path` is refused before anything is written."""
    p = Path(path)
    if p.is_symlink():
        p = p.resolve()
    if p.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=f".tmp{p.suffix}")
    except OSError as e:
        raise _naming(e, Path(path)) from None
    os.close(fd)
    tmp = Path(name)
    try:
        mode = p.stat().st_mode & 0o7777 if p.exists() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        yield tmp
        os.replace(tmp, p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.filename is not None and str(e.filename) == str(tmp):
            raise _naming(e, Path(path)) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_writable(path: str | os.PathLike) -> None:
    """Raise the OSError a write to `path` would meet, naming it, before any work is done: a
    folder there, a file where one of its folders should be, or a folder not writable."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
    parent = p.resolve().parent if p.is_symlink() else p.absolute().parent
    while not parent.exists():  # the nearest folder that is there decides (the rest is made)
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{parent} is a file, not a folder", str(path))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"cannot write in {parent}", str(path))


def write_text(path: str | os.PathLike, text: str) -> Path:
    """UTF-8 text, atomically, newlines as given (a file's own line endings stay)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    return Path(path)


__all__ = ["atomic_path", "check_writable", "write_text"]
