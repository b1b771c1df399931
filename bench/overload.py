"""The overload scenario: one API worker at 1,000 connections against the same at 32.

wrk cannot tell the latency of admitted requests from that of the 503s (its histogram mixes
them), so this scenario has a client of its own: asyncio streams speaking HTTP/1.1 keep-alive,
one task per connection, each sending its next request as soon as the last is answered, and
after a 503 waiting the Retry-After it names, as the app's interceptor does (the targets are
judged on this client; a run with no backoff at all is printed beside it). It records every
answer by status, whether each 503 carries Retry-After, the latency of the 2xx alone, and
requests left unanswered past the client timeout. The targets (docs/performance.md): goodput
(2xx/s) at 1,000 connections >= 90 % of the 32-connection figure; p99 of admitted requests
<= 5 x the 32-connection p99; no 5xx but 503; every 503 with Retry-After; client timeouts
< 1 %.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import psutil
import uvloop

from bench import client
from bench.servers import Server

CLIENT_TIMEOUT_SECONDS = 10.0
# Load before each run is measured: 1,000 connections opened at once and all but 32 refused in
# the first second, and the first of them back within the next. Reported apart (`storm_goodput`).
WARMUP_SECONDS = 3.0


@dataclass
class Tally:
    ok: int = 0
    shed: int = 0
    shed_without_retry_after: int = 0
    other_5xx: int = 0
    other: int = 0
    timeouts: int = 0
    connection_errors: int = 0
    ok_answers: list[tuple[float, float]] = field(default_factory=list)  # (when, latency ms)
    started: float = 0.0


@dataclass
class OverloadRun:
    label: str
    connections: int
    seconds: float  # measured, after `warmup`
    goodput: float  # 2xx per second, measured
    shed: int
    shed_without_retry_after: int
    other_5xx: int
    other: int
    timeouts: int
    connection_errors: int
    answered: int
    p50_ms: float
    p99_ms: float
    server_cpu: float = 0.0  # the API's CPU seconds per second of the run (1.0: one core)
    client_cpu: float = 0.0  # this load generator's, the same way
    warmup: float = 0.0  # seconds of load before the measurement (the connection storm)
    storm_goodput: float = 0.0  # 2xx per second during them

    @property
    def whole_goodput(self) -> float:
        """2xx per second over the whole run, the warm-up included."""
        total = self.warmup + self.seconds
        return (self.storm_goodput * self.warmup + self.goodput * self.seconds) / total


def _request(host: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _one_connection(
    host: str, port: int, requests: list[bytes], deadline: float, tally: Tally, *, polite: bool
) -> None:
    reader = writer = None
    while time.monotonic() < deadline:
        try:
            if writer is None:
                async with asyncio.timeout(CLIENT_TIMEOUT_SECONDS):
                    reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            started = time.monotonic()
            writer.write(random.choice(requests))
            async with asyncio.timeout(CLIENT_TIMEOUT_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length, close, retry_after = 0, False, 0.0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"connection" and value.strip().lower() == b"close":
                        close = True
                    elif name == b"retry-after":
                        retry_after = float(value)
                if length:
                    await reader.readexactly(length)
            elapsed = (time.monotonic() - started) * 1000
            if 200 <= status < 300:
                tally.ok += 1
                tally.ok_answers.append((time.monotonic(), elapsed))
            elif status == 503:
                tally.shed += 1
                tally.shed_without_retry_after += not retry_after
                if polite:  # as the app does: wait what the server asked, then retry
                    await asyncio.sleep(min(retry_after, deadline - time.monotonic()))
            elif status >= 500:
                tally.other_5xx += 1
            else:
                tally.other += 1
            if close:
                writer.close()
                reader = writer = None
        except TimeoutError:
            tally.timeouts += 1
            if writer is not None:
                writer.close()
            reader = writer = None
        except (OSError, asyncio.IncompleteReadError, ValueError):
            tally.connection_errors += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.05)
    if writer is not None:
        writer.close()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _load(
    url: str,
    paths: list[str],
    headers: dict[str, str],
    connections: int,
    seconds: float,
    polite: bool,
) -> Tally:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [_request(f"{host}:{port}", path, headers) for path in paths]
    tally = Tally(started=time.monotonic())
    deadline = tally.started + seconds
    await asyncio.gather(
        *(
            _one_connection(host, port, requests, deadline, tally, polite=polite)
            for _ in range(connections)
        )
    )
    return tally


def _cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    root = psutil.Process(pid)
    total = 0.0
    for process in (root, *root.children(recursive=True)):
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def run(
    label: str,
    url: str,
    paths: list[str],
    headers: dict[str, str],
    *,
    connections: int,
    seconds: float,
    polite: bool = True,
    server_pid: int | None = None,
    warmup: float = 0.0,
) -> OverloadRun:
    """`warmup` seconds of load, then `seconds` measured: goodput and the latency of the 2xx
    are those of the measured part; every other count (503s, timeouts, 5xx) is of the whole."""
    cpu_before = _cpu_seconds(server_pid)
    client_before = time.process_time()
    # uvloop: the client shares the machine's cores with the server and PostgreSQL, so the
    # cheaper it is, the less it disturbs what it measures.
    tally = uvloop.run(_load(url, paths, headers, connections, warmup + seconds, polite))
    answered = tally.ok + tally.shed + tally.other_5xx + tally.other
    cpu = (_cpu_seconds(server_pid) - cpu_before) / (warmup + seconds)
    client_cpu = (time.process_time() - client_before) / (warmup + seconds)
    measured_from = tally.started + warmup
    latencies = [ms for at, ms in tally.ok_answers if at >= measured_from]
    return OverloadRun(
        label=label,
        connections=connections,
        seconds=seconds,
        goodput=len(latencies) / seconds,
        warmup=warmup,
        storm_goodput=(tally.ok - len(latencies)) / warmup if warmup else 0.0,
        shed=tally.shed,
        shed_without_retry_after=tally.shed_without_retry_after,
        other_5xx=tally.other_5xx,
        other=tally.other,
        timeouts=tally.timeouts,
        connection_errors=tally.connection_errors,
        answered=answered,
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        server_cpu=round(cpu, 2),
        client_cpu=round(client_cpu, 2),
    )


@dataclass
class Verdict:
    scenario: str
    base: OverloadRun
    flood: OverloadRun
    goodput_ratio: float
    p99_ratio: float
    timeout_share: float
    met: bool
    failures: list[str]
    whole_goodput_ratio: float = 0.0  # the same over the whole runs, warm-ups included


def judge(scenario: str, base: OverloadRun, flood: OverloadRun) -> Verdict:
    goodput_ratio = flood.goodput / base.goodput if base.goodput else 0.0
    p99_ratio = flood.p99_ms / base.p99_ms if base.p99_ms else float("inf")
    sent = flood.answered + flood.timeouts
    timeout_share = flood.timeouts / sent if sent else 1.0
    failures = []
    if goodput_ratio < 0.9:
        failures.append(f"goodput {goodput_ratio:.0%} of the 32-connection figure (< 90 %)")
    if p99_ratio > 5:
        failures.append(f"admitted p99 {p99_ratio:.1f} x the 32-connection p99 (> 5)")
    if flood.other_5xx or base.other_5xx:
        failures.append(f"{flood.other_5xx + base.other_5xx} 5xx other than 503")
    if flood.shed_without_retry_after:
        failures.append(f"{flood.shed_without_retry_after} 503 without Retry-After")
    if timeout_share >= 0.01:
        failures.append(f"client timeouts {timeout_share:.1%} (>= 1 %)")
    whole = flood.whole_goodput / base.whole_goodput if base.whole_goodput else 0.0
    return Verdict(scenario, base, flood, goodput_ratio, p99_ratio, timeout_share,
                   not failures, failures, whole)  # fmt: skip


def _median_run(runs: list[OverloadRun]) -> OverloadRun:
    """The run of median goodput, with the median p99 (the machine is noisy: see Method)."""
    ordered = sorted(runs, key=lambda r: r.goodput)
    middle = ordered[len(ordered) // 2]
    p99 = sorted(r.p99_ms for r in runs)[len(runs) // 2]
    return OverloadRun(**{**asdict(middle), "p99_ms": p99,
                          "label": f"{middle.label} (median of {len(runs)})"})  # fmt: skip


def measure(
    env: dict[str, str],
    sample_ids: list[str],
    *,
    seconds: float,
    flood: int = 1000,
    repeats: int = 3,
    warmup: float = WARMUP_SECONDS,
) -> list[Verdict]:
    """Both scenarios against one API worker (its own server), each at 32 then `flood`
    connections, interleaved `repeats` times (medians kept), then once with no backoff. Each
    run is `warmup` seconds of load, then `seconds` measured."""
    verdicts = []
    with Server.pagely(1, env) as server:
        server.wait_until_up("/health/ready")
        token = client.sign_in(server.url, "bench0@example.com")
        client.read_each(server.url, sample_ids)
        auth = {"Authorization": f"Bearer {token}"}
        scenarios = {
            "/auth/me": ["/api/v1/auth/me"],
            "cached book, bearer": [f"/api/v1/books/{book_id}" for book_id in sample_ids],
        }
        for name, paths in scenarios.items():
            run(f"{name} warm-up", server.url, paths, auth, connections=32, seconds=1)

            def measured(
                label: str, connections: int, polite: bool = True, paths: list[str] = paths
            ) -> OverloadRun:
                one = run(
                    label, server.url, paths, auth, connections=connections, seconds=seconds,
                    polite=polite, server_pid=server.process.pid, warmup=warmup,
                )  # fmt: skip
                _print(one)
                return one

            bases, floods = [], []
            for _ in range(repeats):
                bases.append(measured(f"{name} x32", 32))
                floods.append(measured(f"{name} x{flood}", flood))
            base, flooded = _median_run(bases), _median_run(floods)
            verdicts.append(judge(name, base, flooded))
            _print(base)
            _print(flooded)
            measured(f"{name} x{flood}, no backoff", flood, polite=False)
    return verdicts


def _print(one: OverloadRun) -> None:
    print(
        f"  overload {one.label:<28} {one.goodput:>7.0f} 2xx/s  "
        f"p50 {one.p50_ms:6.2f} ms  p99 {one.p99_ms:7.2f} ms  503 {one.shed}  "
        f"other 5xx {one.other_5xx}  timeouts {one.timeouts}  "
        f"API CPU {one.server_cpu:.2f}  client CPU {one.client_cpu:.2f}  "
        f"warm-up {one.storm_goodput:.0f} 2xx/s",
        flush=True,
    )


def summary(verdicts: list[Verdict]) -> list[str]:
    lines = []
    for v in verdicts:
        state = "met" if v.met else "NOT met: " + "; ".join(v.failures)
        lines.append(
            f"overload, {v.scenario}: goodput {v.goodput_ratio:.0%} of x32 (whole runs, warm-up "
            f"included: {v.whole_goodput_ratio:.0%}), admitted p99 "
            f"{v.p99_ratio:.1f} x, {v.flood.shed} shed (503), timeouts {v.timeout_share:.2%}: "
            f"{state}"
        )
    return lines


def as_json(verdicts: list[Verdict]) -> list[dict[str, Any]]:
    return [asdict(v) for v in verdicts]
