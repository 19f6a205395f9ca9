"""Temporary files of atomic saves, and the clean-up of those a killed save left behind.

A save writes ``.fastcnn-<target name>.<host>.<pid>.<random>.tmp`` next to the target
and renames it over the target when complete (see ``serialization._write_atomic``).
A process killed mid-write (``kill -9``, power loss) leaves that file behind: 50 kills
left 30 files, 368 MB. Before each save of a target, its stale temporaries are removed,
and only those that are certainly

- *ours*: a regular file (not a symlink), owned by this user, whose name has exactly
  the shape above for *this* target (``a.npz``'s clean-up never touches ``a``'s); and
- *stale*: written on this host by a process that no longer exists, or untouched for
  :data:`STALE_AFTER_SECONDS` (a file from another host sharing the directory). A save
  in progress -- in another thread, or in another live process -- is never removed.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import time

__all__ = ["temp_prefix", "remove_stale_temps", "STALE_AFTER_SECONDS"]

#: A temporary of another host is stale when unmodified for this long (a save in
#: progress modifies its file continuously; a day leaves a wide margin).
STALE_AFTER_SECONDS = 24 * 3600

_SUFFIX = ".tmp"


def _host() -> str:
    """This machine's name with only ``[A-Za-z0-9-]`` (no dots: they separate fields)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _target_start(path) -> str:
    """``.fastcnn-<target name>.``; the name is cut at 120 characters so that the whole
    temporary name stays under the usual 255-byte limit."""
    return f".fastcnn-{os.path.basename(path)[:120]}."


def temp_prefix(path) -> str:
    """``.fastcnn-<target name>.<host>.<pid>.``: the name start of a temporary for ``path``
    (``serialization._create_temp`` appends 16 random hex digits, then ``.tmp``)."""
    return f"{_target_start(os.fspath(path))}{_host()}.{os.getpid()}."


def _process_exists(pid: int) -> bool:
    if os.name == "nt":        # no cheap, harmless check there: assume it still runs
        return True
    try:
        os.kill(pid, 0)        # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:            # exists but belongs to someone else, or unknown: keep
        return True
    return True


def _is_stale(entry: os.DirEntry, host: str, pid: int) -> bool:
    info = entry.stat(follow_symlinks=False)
    if not stat.S_ISREG(info.st_mode):
        return False
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return False
    if host == _host() and not _process_exists(pid):
        return True
    return time.time() - info.st_mtime > STALE_AFTER_SECONDS


def remove_stale_temps(path) -> list[str]:
    """Remove the stale temporaries of target ``path`` (see the module docstring);
    returns the paths removed. Never raises for a file it cannot inspect or remove."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    start = _target_start(path)
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(start) and name.endswith(_SUFFIX)):
            continue
        fields = name[len(start):-len(_SUFFIX)].split(".")
        if len(fields) != 3 or not fields[1].isdigit():    # host, pid, random part
            continue
        try:
            if _is_stale(entry, fields[0], int(fields[1])):
                os.remove(entry.path)
                removed.append(entry.path)
        except OSError:      # vanished meanwhile (its save finished), or not ours to remove
            continue
    return removed
