"""Reading files of a checkout that may be hostile (spec 9.6): regular files only, bounded.

A pull request from a fork decides what sits under `campaigns/`: a symlink to `/etc/passwd`,
a FIFO that never answers, `zero.yaml -> /dev/zero`. `read_regular` opens with `O_NOFOLLOW`
(a symlink is never followed) and `O_NONBLOCK` (opening a FIFO never waits), checks with
`fstat` on the open descriptor that it is a regular file (no race between a check and the
open), and reads at most `limit + 1` bytes whatever size the file reports.
"""

from __future__ import annotations

import errno
import os
import stat


class Unreadable(Exception):
    """A file that is not read; `str()` says why, for a problem message."""


def kind(mode: int) -> str | None:
    """What a non-regular, non-folder entry is (`a symbolic link`, `a FIFO`...); else None."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return "not a regular file"


CAMPAIGNS = "below the campaigns folder"


def special_message(what: str, where: str = CAMPAIGNS) -> str:
    """The problem message for an entry (of the campaigns folder, or `where`) never read."""
    return (
        f"not a regular file but {what}; only regular files are read {where}, and this one "
        "is never followed or opened: replace it with a regular file or remove it"
    )


_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_FLAGS |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)


def read_regular(path: str | os.PathLike[str], limit: int, where: str = CAMPAIGNS) -> bytes:
    """The bytes of the regular file at `path`; raises `Unreadable` for anything else or for
    a file over `limit` bytes (read or reported). `where` names the files in the message."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Unreadable(special_message("a symbolic link", where)) from None
        try:  # a socket cannot be opened at all (ENXIO): say what it is
            what = kind(os.lstat(path).st_mode)
        except OSError:
            what = None
        if what is not None:
            raise Unreadable(special_message(what, where)) from None
        raise Unreadable(f"cannot read file: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise Unreadable("cannot read file: it is a folder")
        what = kind(info.st_mode)
        if what is not None:
            raise Unreadable(special_message(what, where))
        if info.st_size > limit:
            raise Unreadable(over_limit(info.st_size, limit))
        data = _read_upto(fd, limit)
        if len(data) > limit:
            raise Unreadable(over_limit(len(data), limit, more=True))
        return data
    except OSError as exc:
        raise Unreadable(f"cannot read file: {exc.strerror}") from None
    finally:
        os.close(fd)


def _read_upto(fd: int, limit: int) -> bytes:
    """At most `limit + 1` bytes of `fd` (one more than allowed tells a file over the limit,
    whatever size it reports: /dev/zero reports 0)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = os.read(fd, limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def over_limit(size: int, limit: int, more: bool = False) -> str:
    """`file is N bytes, over the 1 MiB limit; not parsed` (`more`: at least N bytes)."""
    shown = f"more than {limit} bytes" if more else f"{size} bytes"
    return f"file is {shown}, over the {limit // 1024 // 1024} MiB limit; not parsed"


def is_special(path: str | os.PathLike[str]) -> str | None:
    """What `path` is when it exists and is not a regular file or folder (never followed)."""
    try:
        return kind(os.lstat(path).st_mode)
    except OSError:
        return None


def read_bounded(path: str | os.PathLike[str], limit: int, *, follow: bool = True) -> bytes:
    """The bytes of the regular file at `path` (a symbolic link followed to one when `follow`:
    mounted secrets are links), at most `limit` of them. `Unreadable` says what it is instead
    (`it is a FIFO (named pipe), not a regular file`); opening a FIFO never waits, a device is
    never read. FileNotFoundError is left to the caller."""
    flags = _FLAGS & ~getattr(os, "O_NOFOLLOW", 0) if follow else _FLAGS
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        try:
            what = kind((os.stat if follow else os.lstat)(path).st_mode)
        except OSError:
            what = None
        if what is not None:
            raise Unreadable(f"it is {what}, not a regular file") from None
        raise Unreadable(exc.strerror or type(exc).__name__) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise Unreadable("it is a folder")
        what = kind(info.st_mode)
        if what is not None:
            raise Unreadable(f"it is {what}, not a regular file")
        data = _read_upto(fd, limit) if info.st_size <= limit else b""
        if len(data) > limit or info.st_size > limit:
            raise Unreadable(f"it is larger than {limit // 1024} KiB")
        return data
    except OSError as exc:
        raise Unreadable(exc.strerror or type(exc).__name__) from None
    finally:
        os.close(fd)
