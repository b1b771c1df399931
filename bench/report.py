"""The verdict: ratios to the references, the targets of docs/performance.md and whether they
are met, the printed table, and the JSON results kept for comparisons across commits."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench import REPOSITORY
from bench.scenarios import References, Result, Scenario
from pagely.core.hashing import hash_password_sync

RESULTS = REPOSITORY / "bench" / "results"

# Scenarios that read (or write) a book are compared with R1, which reads one from PostgreSQL
# and Redis; those that read neither with R0, a constant answer.
_AGAINST_R1 = (
    Scenario.BOOK_ANONYMOUS,
    Scenario.BOOK_BEARER,
    Scenario.AUTH_ME,
    Scenario.BOOK_BEARER_TRACED,
    Scenario.AUTH_ME_TRACED,
    Scenario.FIRST_PAGE,
    Scenario.DEEP_PAGE,
    Scenario.FIRST_PAGE_UNCACHED,
    Scenario.DEEP_PAGE_UNCACHED,
    Scenario.SEARCH,
    Scenario.PATCH_BOOK,
    Scenario.POST_REVIEW,
)
_AGAINST_R0 = (Scenario.SIGNIN_STORM, Scenario.HEALTH_IDLE, Scenario.HEALTH_DURING_SIGNIN_STORM)

# Throughput targets: at least this many times R1's requests per second.
_TIMES_R1 = {
    Scenario.BOOK_ANONYMOUS: 1.2,
    Scenario.BOOK_BEARER: 0.8,
    Scenario.AUTH_ME: 0.8,
    Scenario.FIRST_PAGE: 0.5,
    Scenario.SEARCH: 0.25,
}
_TWO_WORKERS_SCALING = 1.6  # scenario 2 with two workers, against one


def _compare(result: Result, reference: Result, name: str) -> None:
    result.ratio = result.rps / reference.rps if reference.rps else None
    result.ratio_to = name


def _judge(result: Result, target: str, met: bool) -> None:
    result.target, result.met = target, met


def _hash_ms() -> float:
    """What one password hash costs on this machine now (the median of five)."""
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        hash_password_sync("a-good-long-password")
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def evaluate(
    references: References,
    results: Mapping[Scenario, Result],
    two_workers: tuple[References, Mapping[Scenario, Result]] | None = None,
) -> list[str]:
    """Fill in every result's ratio and target (each target whose scenarios ran) and return
    notes: errors, and how scenario 2 scaled to two workers."""
    for scenario in _AGAINST_R1:
        if scenario in results:
            _compare(results[scenario], references.r1, "R1")
    for scenario in _AGAINST_R0:
        if scenario in results:
            _compare(results[scenario], references.r0, "R0")

    for scenario, times in _TIMES_R1.items():
        if scenario in results:
            result = results[scenario]
            _judge(result, f">= {times} x R1", (result.ratio or 0) >= times)

    deep, first = results.get(Scenario.DEEP_PAGE), results.get(Scenario.FIRST_PAGE)
    if deep and first:
        _judge(deep, "p50 <= 1.3 x scenario 4 p50", deep.p50_ms <= 1.3 * first.p50_ms)
    deep = results.get(Scenario.DEEP_PAGE_UNCACHED)
    first = results.get(Scenario.FIRST_PAGE_UNCACHED)
    if deep and first:
        _judge(deep, "p50 <= 1.3 x 4 uncached p50", deep.p50_ms <= 1.3 * first.p50_ms)
    if search := results.get(Scenario.SEARCH_ONE_CONNECTION):
        _judge(search, "p95 <= 25 ms", search.p95_ms <= 25)
    during = results.get(Scenario.HEALTH_DURING_SIGNIN_STORM)
    idle = results.get(Scenario.HEALTH_IDLE)
    if during and idle:
        _judge(during, "p99 <= 3 x idle p99", during.p99_ms <= 3 * idle.p99_ms)
    if signin := results.get(Scenario.SIGNIN_STORM):
        # What every core hashing passwords and doing nothing else would sustain.
        hash_ms = _hash_ms()
        ideal = (os.cpu_count() or 1) * 1000 / hash_ms
        _judge(
            signin,
            f"within 20% of {ideal:.0f}/s (cores x 1000 / {hash_ms:.0f} ms hash)",
            signin.rps >= 0.8 * ideal,
        )

    notes = [f"{r.label}: {r.errors} errors" for r in results.values() if r.errors]
    if two_workers is not None:
        references_two, results_two = two_workers
        one, two = results.get(Scenario.BOOK_BEARER), results_two.get(Scenario.BOOK_BEARER)
        if one is not None and two is not None:
            scaling = two.rps / one.rps
            notes.append(
                f"scenario 2 with 2 workers: {scaling:.2f}x one worker "
                f"(target >= {_TWO_WORKERS_SCALING}x)"
            )
            _judge(two, f">= {_TWO_WORKERS_SCALING} x one worker", scaling >= _TWO_WORKERS_SCALING)
            _compare(two, references_two.r1, "R1 (2 workers)")
    return notes


def table(results: list[Result], peak_rss: Mapping[str, int]) -> str:
    head = (
        f"{'scenario':<40} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6} "
        f"{'ratio':>12}  target"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        ratio = f"{r.ratio:.2f} x {r.ratio_to}" if r.ratio is not None else ""
        verdict = "" if r.met is None else ("  met" if r.met else "  MISSED")
        lines.append(
            f"{r.label:<40} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p95_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.errors:>6} {ratio:>12}  {r.target or ''}{verdict}"
        )
    for name, rss in peak_rss.items():
        lines.append(f"peak RSS of the API ({name}): {rss / 2**20:.0f} MiB")
    return "\n".join(lines)


def _commit() -> str:
    git = ["git", "rev-parse", "--short", "HEAD"]
    out = subprocess.run(git, capture_output=True, text=True, cwd=REPOSITORY, check=False)
    return out.stdout.strip() or "unknown"


def write_results(
    options: Mapping[str, object],
    results: list[Result],
    peak_rss: Mapping[str, int],
    notes: list[str],
    seconds: float,
    extra: Mapping[str, object] | None = None,
) -> Path:
    """bench/results/<UTC time>-<commit>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    commit = _commit()
    path = RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{commit}.json"
    document = {
        "commit": commit,
        "options": dict(options),
        "cpu_count": os.cpu_count(),
        "results": [asdict(r) for r in results],
        "peak_rss_bytes": dict(peak_rss),
        "notes": notes,
        "seconds": seconds,
        **(extra or {}),
    }
    path.write_text(json.dumps(document, indent=2))
    print(f"results: {path.relative_to(REPOSITORY)}")
    return path
