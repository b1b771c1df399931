"""Argon2id password hashing (pwdlib), run in worker threads so it never blocks the event loop.

The threads are as many as the cores (a hash is memory-hard and single-threaded; more threads
only contend) and run at a lower CPU priority: during a sign-in storm the event loop still
gets the CPU first, so every other request keeps its latency while hashes queue.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TypeVar

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

# OWASP's minimum for Argon2id is m=19 MiB, t=2, p=1; these sit above it.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
# Added to the process's nice value for the hashing threads (Linux: nice is per thread).
HASHING_NICENESS = 10

T = TypeVar("T")


def _lower_priority() -> None:
    try:
        tid = threading.get_native_id()
        os.setpriority(
            os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + HASHING_NICENESS
        )
    except (AttributeError, OSError):  # not Linux, or not permitted: the default priority
        pass


def usable_cores() -> int:
    """The CPUs this process may run on (affinity, as a container's cpuset sets it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


_hashing = ThreadPoolExecutor(
    max_workers=usable_cores(), thread_name_prefix="argon2", initializer=_lower_priority
)


async def _in_hashing_thread(work: Callable[..., T], *args: str) -> T:
    return await asyncio.get_running_loop().run_in_executor(_hashing, work, *args)


@lru_cache(maxsize=1)
def password_hash() -> PasswordHash:
    return PasswordHash(
        (
            Argon2Hasher(
                memory_cost=ARGON2_MEMORY_KIB,
                time_cost=ARGON2_TIME_COST,
                parallelism=ARGON2_PARALLELISM,
            ),
        )
    )


def hash_password_sync(password: str) -> str:
    return password_hash().hash(password)


async def hash_password(password: str) -> str:
    return await _in_hashing_thread(hash_password_sync, password)


async def verify_and_update(password: str, stored_hash: str) -> tuple[bool, str | None]:
    """(matches, new hash when the parameters changed and the hash should be replaced)."""
    return await _in_hashing_thread(password_hash().verify_and_update, password, stored_hash)
