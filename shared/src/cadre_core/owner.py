"""Which process owns a background job or a budget reservation, and whether it still runs.

An owner is `host:pid:boot:start`: the hostname, the pid, and what keeps a pid unique over time on Linux,
the boot id (`/proc/sys/kernel/random/boot_id`) and the process start time (field 22 of `/proc/<pid>/stat`,
clock ticks since boot; proc(5)). So a pid reused after a crash or a reboot is not taken for the owner.
Off Linux boot and start are empty and a live pid counts as the owner.

On Linux the host part also names the pid namespace (`/proc/self/ns/pid`; pid_namespaces(7)): two
containers that share a hostname (host networking) have pids that mean nothing to each other, so each
counts as another host, whose processes are assumed alive (their jobs wait for their lease to run out).
"""

from __future__ import annotations

import functools
import os
import socket
import sys
import time
from pathlib import Path


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace(":", "")
    except OSError:
        return ""


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks after boot (Linux), or '' (no such process, not Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()  # the command name before it may hold spaces and parentheses
    return fields[19] if len(fields) > 19 else ""


def _exited(pid: int) -> bool:
    """A zombie (Linux state Z or X): it has exited, only its parent has not collected it yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


def _pid_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":  # pragma: no cover - os.kill would terminate the process there
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]  # exists on Windows only
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        try:
            code = ctypes.c_ulong()
            return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, OverflowError):  # OverflowError: a pid past pid_t, which only a bogus owner has
        return False
    return True


def _pid_namespace() -> str:
    """`/ns<inode>` of this process's pid namespace (Linux), or ''."""
    try:
        link = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return ""
    return "/ns" + link.partition("[")[2].rstrip("]") if "[" in link else ""


_HOST = socket.gethostname().replace(":", "_") + _pid_namespace()
_BOOT = _boot_id()


@functools.cache
def _self_start(pid: int) -> str:
    """This process's start ticks (keyed by pid, so a forked child looks itself up)."""
    return _start_ticks(pid) or str(int(time.time()))


def process_owner(pid: int | None = None) -> str:
    """`host:pid:boot:start` naming a process; without `pid`, this process."""
    if pid is None or pid == os.getpid():
        return f"{_HOST}:{os.getpid()}:{_BOOT}:{_self_start(os.getpid())}"
    return f"{_HOST}:{pid}:{_BOOT}:{_start_ticks(pid)}"


def on_this_host(owner: str) -> bool:
    """Whether `owner` names a process on this machine (where its pid can be checked)."""
    return owner.rsplit(":", 3)[0] == _HOST if owner.count(":") >= 3 else False


def owner_alive(owner: str) -> bool:
    """Whether the process named by `owner` may still be running; another host's is assumed alive."""
    try:
        host, pid, boot, start = owner.rsplit(":", 3)
        pid_number = int(pid)
    except ValueError:
        return False
    if host != _HOST:
        return True
    if boot and _BOOT and boot != _BOOT:
        return False
    if not _pid_exists(pid_number) or _exited(pid_number):
        return False
    now_start = _start_ticks(pid_number)
    return not (start and now_start and start != now_start)  # a reused pid is another process
