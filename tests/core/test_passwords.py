"""Hashing runs off the event loop, on as many threads as cores, at a lower CPU priority."""

from __future__ import annotations

import asyncio
import os
import threading

from pagely.core import hashing as passwords


async def test_hashes_run_on_low_priority_threads_beside_the_loop() -> None:
    loop_thread = threading.get_native_id()
    here = os.getpriority(os.PRIO_PROCESS, loop_thread)

    def where() -> tuple[int, int]:
        tid = threading.get_native_id()
        return tid, os.getpriority(os.PRIO_PROCESS, tid)

    tid, niceness = await passwords._in_hashing_thread(where)
    assert tid != loop_thread
    assert niceness == min(here + passwords.HASHING_NICENESS, 19)
    assert os.getpriority(os.PRIO_PROCESS, loop_thread) == here  # the loop keeps its priority

    stored = await passwords.hash_password("a-good-long-password")
    assert (await passwords.verify_and_update("a-good-long-password", stored))[0]
    # Never more hashing threads than cores, however many sign-ins arrive at once.
    await asyncio.gather(*(passwords.hash_password("x" * 12) for _ in range(8)))
    assert passwords._hashing._max_workers == len(os.sched_getaffinity(0))
    assert len(passwords._hashing._threads) <= len(os.sched_getaffinity(0))
