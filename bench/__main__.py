"""`make bench`: prepare services and data, serve Pagely and the two references (R0, R1) with
the same uvicorn settings, load each with wrk (warm-up, then repeats; medians reported), and
print ratios. Absolute numbers alone mean little on a shared machine; ratios to R1/R0 from the
same run do.

    python -m bench [--books 100000] [--duration 5] [--repeats 3] [--connections 32]
    python -m bench --scale          # scenarios 4, 5, 6 at 10k, 100k and 1M books
    python -m bench --smoke          # tiny catalog, 1 s per scenario (CI)
    python -m bench --overload       # the overload scenario alone
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
from dataclasses import asdict, dataclass

from bench import data, overload, report, scale, services
from bench.load import Load
from bench.scenarios import Measurements, Scenarios


@dataclass(frozen=True)
class Options:
    books: int
    duration: float
    warmup: float
    repeats: int
    connections: int
    workers: tuple[int, ...]
    scale: bool
    smoke: bool
    overload: bool = False
    tracing: bool = False

    @property
    def load(self) -> Load:
        return Load(self.connections, self.duration, self.warmup, self.repeats)


def bench(options: Options, server_url: str, redis_url: str) -> None:
    """Every scenario with one worker; then, with `--workers 1,2`, scenarios 1 to 3 (and the
    references) with two."""
    started = time.monotonic()
    db_url = services.prepare(server_url, options.books)
    asyncio.run(data.reset_writes(db_url))
    measurements = Measurements(options.load)
    scenarios = Scenarios(
        measurements,
        services.environment(db_url, redis_url),
        options.books,
        services.sample_ids(db_url),
    )
    print(
        f"== one worker ({options.books} books, {options.connections} connections, "
        f"{options.repeats} x {options.duration:g}s per scenario)"
    )
    references = scenarios.references(1)
    results, peak = scenarios.pagely(1, full=True)
    peak_rss = {"1 worker": peak}
    print("== tracing on, 10 % sampled (scenarios 2 and 3)")
    tracing_notes = scenarios.traced(results)
    print("== overload (one worker; 32 connections, then 1,000)")
    verdicts = overload.measure(
        scenarios.env,
        scenarios.sample_ids,
        seconds=options.duration * 2,
        flood=100 if options.smoke else 1000,
        repeats=options.repeats,
        warmup=0.5 if options.smoke else overload.WARMUP_SECONDS,
    )
    two_workers = None
    if 2 in options.workers:
        print("== two workers")
        references_two = scenarios.references(2)
        results_two, peak_rss["2 workers"] = scenarios.pagely(2, full=False)
        two_workers = (references_two, results_two)
    notes = report.evaluate(references, results, two_workers) + overload.summary(verdicts)
    notes += tracing_notes
    print()
    print(report.table(measurements.results, peak_rss))
    for note in notes:
        print(note)
    seconds = time.monotonic() - started
    report.write_results(
        asdict(options), measurements.results, peak_rss, notes, seconds,
        extra={"overload": overload.as_json(verdicts)},
    )  # fmt: skip


def bench_overload(options: Options, server_url: str, redis_url: str) -> None:
    started = time.monotonic()
    db_url = services.prepare(server_url, options.books)
    env = services.environment(db_url, redis_url)
    print("== overload (one worker; 32 connections, then 1,000)")
    verdicts = overload.measure(
        env, services.sample_ids(db_url), seconds=options.duration * 2, repeats=options.repeats
    )
    notes = overload.summary(verdicts)
    for note in notes:
        print(note)
    report.write_results(
        asdict(options), [], {}, notes, time.monotonic() - started,
        extra={"overload": overload.as_json(verdicts)},
    )  # fmt: skip


def bench_tracing(options: Options, server_url: str, redis_url: str) -> None:
    """Scenarios 2 and 3 untraced, then traced (10 % sampled), `repeats` times in turn."""
    started = time.monotonic()
    db_url = services.prepare(server_url, options.books)
    measurements = Measurements(options.load)
    scenarios = Scenarios(measurements, services.environment(db_url, redis_url),
                          options.books, services.sample_ids(db_url))  # fmt: skip
    notes = []
    for run in range(1, options.repeats + 1):
        print(f"== tracing, run {run}: off, then on (10 % sampled)")
        untraced, _ = scenarios.pagely(1, full=False)
        notes += [f"run {run}: {note}" for note in scenarios.traced(untraced)]
    for note in notes:
        print(note)
    seconds = time.monotonic() - started
    report.write_results(asdict(options), measurements.results, {}, notes, seconds)


def bench_scale(options: Options, server_url: str, redis_url: str) -> None:
    started = time.monotonic()
    sizes = scale.SMOKE_CATALOG_SIZES if options.smoke else scale.CATALOG_SIZES
    measurements = Measurements(options.load)
    curve = scale.measure(measurements, sizes, server_url, redis_url)
    print()
    print(scale.summary(curve))
    seconds = time.monotonic() - started
    report.write_results(asdict(options), measurements.results, {}, [], seconds)


def parse(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description="Pagely benchmark (see docs/performance.md)")
    parser.add_argument("--books", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", default="1,2", help="worker counts, e.g. 1 or 1,2")
    parser.add_argument("--scale", action="store_true", help="10k / 100k / 1M books")
    parser.add_argument("--smoke", action="store_true", help="tiny and quick (CI)")
    parser.add_argument("--overload", action="store_true", help="the overload scenario alone")
    parser.add_argument("--tracing", action="store_true", help="tracing's cost alone")
    args = parser.parse_args(argv)
    if args.smoke:
        args.books, args.duration, args.warmup, args.repeats = min(args.books, 2000), 1, 0, 1
    return Options(
        books=args.books,
        duration=args.duration,
        warmup=args.warmup,
        repeats=args.repeats,
        connections=args.connections,
        workers=tuple(int(w) for w in args.workers.split(",")),
        scale=args.scale,
        smoke=args.smoke,
        overload=args.overload,
        tracing=args.tracing,
    )


def main() -> int:
    options = parse()
    if shutil.which("wrk") is None:
        print("wrk is not installed: run `make bench-deps` (apt-get install wrk)", file=sys.stderr)
        return 2
    with services.postgres_and_redis() as (server_url, redis_url):
        if options.scale:
            bench_scale(options, server_url, redis_url)
        elif options.overload:
            bench_overload(options, server_url, redis_url)
        elif options.tracing:
            bench_tracing(options, server_url, redis_url)
        else:
            bench(options, server_url, redis_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
