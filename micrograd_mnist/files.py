"""Files we read and write, safely: every input is a bounded regular file, every output is written
to a temp file beside it and renamed, and nothing that is not ours (a device, a FIFO, a socket, a
symlink, one of the command's own inputs) is ever replaced.

`-` as an output path means standard output, for the writers where a stream makes sense.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

STDOUT = "-"
TEMP_SUFFIX = ".part"  # atomic_write's temp files are `.NAME.XXXXXXXX.part`, beside NAME


class FileError(Exception):
    """A path we will not read or write as asked; the message is one line for the user."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "symbolic link"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "FIFO (named pipe)"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "folder")):
        if test(mode):
            return name
    return "special file"


def open_input(path: str | Path, limit: int, what: str = "file") -> BinaryIO:
    """Open `path` for reading, refusing anything but a regular file of at most `limit` bytes.

    O_NONBLOCK so that a FIFO is refused instead of waiting forever for a writer; a missing file
    raises FileNotFoundError and a folder IsADirectoryError, for the caller's own message.
    """
    path = Path(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        if not stat.S_ISREG(info.st_mode):
            raise FileError(f"{path} is a {_kind(info.st_mode)}, not a regular file; give the {what} itself")
        if info.st_size > limit:
            raise FileError(f"{path} is {info.st_size:,} bytes, more than {_a(what)} can be ({limit:,}); "
                            f"is it the right file?")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _a(what: str) -> str:
    """`what` with its article, as the letter it starts with sounds: a checkpoint, an IDX file, an image."""
    return f"{'an' if what[:1].lower() in 'aeio' else 'a'} {what}"


def read_input(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The whole of a regular file of at most `limit` bytes (see open_input)."""
    with open_input(path, limit, what) as f:
        data = f.read(limit + 1)
    if len(data) > limit:  # it grew while we read it
        raise FileError(f"{path} is more than {limit:,} bytes, more than {_a(what)} can be")
    return data


def finite_number(v) -> bool:
    """A finite JSON number: json.loads also reads NaN and Infinity, and integers of any size (which
    math.isfinite refuses with OverflowError); a bool is an int to Python but not a number here."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return abs(v) < 1e300 if isinstance(v, int) else math.isfinite(v)


def check_output(path: str | Path, inputs: Iterable[str | Path] = ()) -> None:
    """Refuse to write `path` if it is something other than a regular file, or one of `inputs`."""
    if str(path) == STDOUT:
        return
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):  # say so now, naming the path, not after the work and naming a temp file
        raise IsADirectoryError(errno.EISDIR, "is a folder; give a file name", str(path))
    if not stat.S_ISREG(info.st_mode):
        raise FileError(f"refusing to replace {path}: it is a {_kind(info.st_mode)}, not a regular file; "
                        f"give another file name ('-' writes to standard output where that makes sense)")
    for source in inputs:
        if source is not None and str(source) != STDOUT and same_file(path, source):
            raise FileError(f"refusing to write {path}: it is also this command's input {source}; "
                            "give another file name")


def same_file(a: str | Path, b: str | Path) -> bool:
    """True if both paths name one file or folder (hard links and symlinks included); False if either is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _mode_for(path: Path) -> int:
    """The permissions a file written at `path` gets: those of the file it replaces, else what open() would
    give a new file (0666 less the umask), never mkstemp's 0600."""
    try:
        return stat.S_IMODE(os.lstat(path).st_mode) & 0o777  # not setuid, setgid or sticky: a new file's bits
    except FileNotFoundError:
        pass
    try:  # Linux tells the umask without changing it; setting it to read it would race other threads
        with open("/proc/self/status") as f:
            mask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object], inputs: Iterable[str | Path] = ()) -> None:
    """Call `write(file)` on a temp file beside `path`, then rename it over `path` (or write to stdout for '-').

    Refuses, before any work, a `path` that is not a regular file or is one of `inputs`.
    """
    check_output(path, inputs)
    if str(path) == STDOUT:
        write(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    path = Path(path)
    made = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]  # deepest first
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))
        check_output(path, inputs)  # once more: something may have appeared there while we worked
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            os.unlink(tmp)
        for folder in made:  # nothing left behind: the folders made for this file go too, if still empty
            try:
                folder.rmdir()
            except OSError:
                break
        if isinstance(e, OSError) and e.errno is not None and (e.filename is None or _is_temp(e.filename, path)):
            # a full disk or a folder we may not write to: name the file asked for, not our temp file (or none)
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise


def _is_temp(name, path: Path) -> bool:
    """Whether `name` is one of atomic_write's temp files for `path`."""
    name = Path(os.fsdecode(name))
    return (os.path.abspath(name.parent) == os.path.abspath(path.parent) and name.name.startswith(f".{path.name}.")
            and name.name.endswith(TEMP_SUFFIX))


def atomic_write_bytes(path: str | Path, data: bytes, inputs: Iterable[str | Path] = ()) -> None:
    atomic_write(path, lambda f: f.write(data), inputs)


def remove_stale_temps(folder: str | Path, names: Iterable[str]) -> list[Path]:
    """Delete the temp files atomic_write left beside `names` in `folder` when a process was killed
    mid-write; the caller must hold the folder (a lock), so no live writer owns them. The paths removed."""
    folder, removed = Path(folder), []
    for name in names:
        for temp in folder.glob(f".{name}.*{TEMP_SUFFIX}"):
            if temp.is_file() and not temp.is_symlink():
                temp.unlink()
                removed.append(temp)
    return removed
