"""`pagely run`'s supervision: a child that exits is restarted with a doubling backoff, one that
crash-loops stops the run, naming it. With real child processes; the clock is the test's."""

from __future__ import annotations

import time

import pytest

from pagely.devtools.supervisor import (
    CRASH_LOOP_EXITS,
    CRASH_LOOP_SECONDS,
    Child,
    RestartPolicy,
    describe_exit,
)


def test_the_backoff_doubles_and_a_crash_loop_gives_up() -> None:
    policy = RestartPolicy()
    delays = [policy.exited(float(t)) for t in (0, 2, 5, 10)]
    assert delays == [1.0, 2.0, 4.0, 8.0]
    assert policy.exited(20.0) is None  # the fifth exit within a minute


def test_exits_spread_out_are_forgiven() -> None:
    policy = RestartPolicy()
    for n in range(20):
        assert policy.exited(n * CRASH_LOOP_SECONDS) == 1.0  # one exit a minute, forever


def test_exits_are_described_by_signal_or_code() -> None:
    assert describe_exit(-9) == "signal 9"
    assert describe_exit(3) == "code 3"


def _wait_exited(child: Child) -> None:
    assert child.proc is not None
    child.proc.wait(60)


def test_a_crash_looping_child_is_restarted_then_stops_the_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    child = Child("beat", ("no-such-command",))  # exits at once, with code 2
    child.start()
    now = time.monotonic()
    pids = set()
    for n in range(CRASH_LOOP_EXITS - 1):
        _wait_exited(child)
        assert child.proc is not None
        pids.add(child.proc.pid)
        assert child.check(now) is True  # exited: a restart is scheduled
        assert child.restart_at == now + 2**n
        assert child.check(now + 2**n - 0.1) is True
        assert child.restart_at is not None  # still waiting
        now += 2**n
        assert child.check(now) is True  # the backoff is over: started again
        assert child.restart_at is None
    _wait_exited(child)
    assert child.check(now) is False
    err = capsys.readouterr().err
    assert "pagely: beat exited with code 2; restarting in 1 s" in err
    assert "pagely: beat exited with code 2; restarting in 8 s" in err
    assert f"beat exited with code 2, {CRASH_LOOP_EXITS} times in 60 s; stopping" in err
    assert len(pids) == CRASH_LOOP_EXITS - 1  # a new process each time
