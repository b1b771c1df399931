"""The scenarios: what each one sends to which server, measured with wrk (a warm-up, then
repeats; medians kept). Their numbers in the labels are those of docs/performance.md."""

from __future__ import annotations

import json
import statistics
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from bench import client, data
from bench.load import Load, WrkRun, get_script, patch_script, post_script, review_script, wrk
from bench.servers import Server
from pagely.devtools.otlp import OtlpReceiver


class Scenario(StrEnum):
    """A scenario's key: what the evaluation and the JSON results name it by."""

    R0 = "r0"  # the reference apps (bench/reference.py)
    R1 = "r1"
    BOOK_ANONYMOUS = "book_anonymous"  # 1
    BOOK_BEARER = "book_bearer"  # 2
    AUTH_ME = "auth_me"  # 3
    BOOK_BEARER_TRACED = "book_bearer_traced"  # 2 with tracing on, 10 % sampled
    AUTH_ME_TRACED = "auth_me_traced"  # 3 with tracing on, 10 % sampled
    FIRST_PAGE = "first_page"  # 4
    DEEP_PAGE = "deep_page"  # 5
    FIRST_PAGE_UNCACHED = "first_page_uncached"  # "4 uncached"
    DEEP_PAGE_UNCACHED = "deep_page_uncached"  # "5 uncached"
    SEARCH = "search"  # 6
    SEARCH_ONE_CONNECTION = "search_one_connection"
    PATCH_BOOK = "patch_book"  # 7
    POST_REVIEW = "post_review"
    HEALTH_IDLE = "health_idle"  # 8
    HEALTH_DURING_SIGNIN_STORM = "health_during_signin_storm"
    SIGNIN_STORM = "signin_storm"


@dataclass
class Result:
    """One scenario on one server; latencies in milliseconds. The evaluation fills in the
    ratio and the target."""

    scenario: Scenario
    label: str
    server: str
    connections: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    ratio: float | None = None
    ratio_to: str | None = None
    target: str | None = None
    met: bool | None = None
    runs: list[dict[str, float]] = field(default_factory=list)


# A script, or one per wrk run (0 is the warm-up) for writes that must never repeat a key.
Script = str | Callable[[int], str]

FIRST_PAGE_PATH = "/api/v1/books?limit=20"
# A filter keeps a page out of the cache: it is read from PostgreSQL on every request.
FIRST_PAGE_UNCACHED_PATH = "/api/v1/books?limit=20&language=en"


def deep_page_path(cursor: str, first_page: str = FIRST_PAGE_PATH) -> str:
    """The page of the listing `first_page` starts that `cursor` points to."""
    return f"{first_page}&cursor={cursor}"


def deep_page_depth(books: int) -> int:
    return min(50_000, books // 2)


def search_paths() -> list[str]:
    return [f"/api/v1/books?q={word}" for word in data.search_words()]


class Measurements:
    """Runs scenarios with the run's load and keeps their results in the order recorded."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self.results: list[Result] = []

    def run(
        self,
        scenario: Scenario,
        label: str,
        server: Server,
        script: Script,
        *,
        connections: int | None = None,
        threads: int | None = None,
    ) -> Result:
        """The warm-up, then the repeats (sampling the server's RSS): their medians. Not
        recorded: `record` it, or call `measure`."""
        load = self.load
        connections = connections or load.connections
        threads = threads or min(connections, 2)

        def one_run(number: int, seconds: float) -> WrkRun:
            text = script(number) if callable(script) else script
            return wrk(server.url, text, connections=connections, threads=threads, seconds=seconds)

        if load.warmup:
            one_run(0, load.warmup)
        with server.sampling_rss():
            runs = [one_run(number, load.duration) for number in range(1, load.repeats + 1)]
        return Result(
            scenario=scenario,
            label=label,
            server=server.name,
            connections=connections,
            rps=statistics.median(r.rps for r in runs),
            p50_ms=statistics.median(r.p50 for r in runs),
            p95_ms=statistics.median(r.p95 for r in runs),
            p99_ms=statistics.median(r.p99 for r in runs),
            errors=sum(r.errors for r in runs),
            runs=[asdict(r) for r in runs],
        )

    def record(self, result: Result) -> Result:
        self.results.append(result)
        print(
            f"  {result.label:<34} {result.rps:>9.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
            f"p99 {result.p99_ms:7.2f} ms  errors {result.errors}",
            flush=True,
        )
        return result

    def measure(
        self,
        scenario: Scenario,
        label: str,
        server: Server,
        script: Script,
        *,
        connections: int | None = None,
        threads: int | None = None,
    ) -> Result:
        """Run and record."""
        result = self.run(scenario, label, server, script, connections=connections, threads=threads)
        return self.record(result)


@dataclass
class References:
    r0: Result
    r1: Result


class Scenarios:
    """Every scenario of `make bench`, against servers started with `env` on a catalog of
    `books` books; `sample_ids` are the books scenarios 1 and 2 (and R1) read."""

    def __init__(
        self, measurements: Measurements, env: dict[str, str], books: int, sample_ids: list[str]
    ) -> None:
        self.measurements = measurements
        self.env = env
        self.books = books
        self.sample_ids = sample_ids

    def references(self, workers: int) -> References:
        measure = self.measurements.measure
        label = f"(workers={workers})"
        with Server.reference("R0", "bench.reference:r0", workers, self.env) as server:
            server.wait_until_up("/")
            r0 = measure(Scenario.R0, f"R0 {label}", server, get_script(["/"]))
        with Server.reference("R1", "bench.reference:r1", workers, self.env) as server:
            paths = [f"/r1/{book_id}" for book_id in self.sample_ids]
            server.wait_until_up(paths[0])
            r1 = measure(Scenario.R1, f"R1 {label}", server, get_script(paths))
        return References(r0=r0, r1=r1)

    def pagely(self, workers: int, *, full: bool) -> tuple[dict[Scenario, Result], int]:
        """Scenarios 1 to 3, then with `full` the rest; and the API's peak RSS."""
        with Server.pagely(workers, self.env) as server:
            server.wait_until_up("/health/ready")
            token = client.sign_in(server.url, "bench0@example.com")
            results = self._reads(server, token, workers)
            if full:
                results |= self._listing(server)
                results |= self._search(server)
                results |= self._writes(server, token)
                results |= self._health_and_signin(server)
            return results, server.peak_rss

    def _reads(self, server: Server, token: str, workers: int) -> dict[Scenario, Result]:
        measure = self.measurements.measure
        # Every sampled book read once: scenarios 1 and 2 are about hot reads, so they measure
        # them from their first second rather than the cache filling up.
        client.read_each(server.url, self.sample_ids)
        auth = {"Authorization": f"Bearer {token}"}
        paths = [f"/api/v1/books/{book_id}" for book_id in self.sample_ids]
        workers_label = f"(workers={workers})"
        return {
            Scenario.BOOK_ANONYMOUS: measure(
                Scenario.BOOK_ANONYMOUS,
                f"1 book by id, anonymous {workers_label}",
                server,
                get_script(paths),
            ),
            Scenario.BOOK_BEARER: measure(
                Scenario.BOOK_BEARER,
                f"2 book by id, bearer {workers_label}",
                server,
                get_script(paths, auth),
            ),
            Scenario.AUTH_ME: measure(
                Scenario.AUTH_ME,
                f"3 /auth/me, bearer {workers_label}",
                server,
                get_script(["/api/v1/auth/me"], auth),
            ),
        }

    def traced(self, untraced: Mapping[Scenario, Result]) -> list[str]:
        """Scenarios 2 and 3 again on a server with tracing on, sampling 10 % of traces and
        exporting them to a local OTLP receiver (which decodes and counts them): what tracing
        costs, against the untraced figures of the same run."""
        pairs = {Scenario.BOOK_BEARER: Scenario.BOOK_BEARER_TRACED,
                 Scenario.AUTH_ME: Scenario.AUTH_ME_TRACED}  # fmt: skip
        with OtlpReceiver.running(keep=False) as receiver:
            env = {
                **self.env,
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": "0.1",
            }
            with Server.pagely(1, env) as server:
                server.wait_until_up("/health/ready")
                token = client.sign_in(server.url, "bench0@example.com")
                client.read_each(server.url, self.sample_ids)
                auth = {"Authorization": f"Bearer {token}"}
                paths = {
                    Scenario.BOOK_BEARER_TRACED: [f"/api/v1/books/{i}" for i in self.sample_ids],
                    Scenario.AUTH_ME_TRACED: ["/api/v1/auth/me"],
                }
                traced = {
                    scenario: self.measurements.measure(
                        scenario, f"{scenario.value} (10 % sampled)", server,
                        get_script(paths[scenario], auth),
                    )
                    for scenario in paths
                }  # fmt: skip
        notes = []
        for off, on in pairs.items():
            if off in untraced:
                before, after = untraced[off], traced[on]
                notes.append(
                    f"tracing on (10 % sampled), {off.value}: {after.rps / before.rps:.0%} of "
                    f"the untraced req/s, p99 {after.p99_ms:.1f} ms against {before.p99_ms:.1f} ms"
                )
        notes.append(f"tracing: {receiver.span_count} spans received by the OTLP receiver")
        return notes

    def _listing(self, server: Server) -> dict[Scenario, Result]:
        measure = self.measurements.measure
        depth = deep_page_depth(self.books)
        cursor = client.deep_cursor(server.url, depth)
        return {
            Scenario.FIRST_PAGE: measure(
                Scenario.FIRST_PAGE, "4 list, first page", server, get_script([FIRST_PAGE_PATH])
            ),
            Scenario.DEEP_PAGE: measure(
                Scenario.DEEP_PAGE,
                f"5 list at depth {depth}",
                server,
                get_script([deep_page_path(cursor)]),
            ),
            # The same two pages from PostgreSQL: their ratio shows what depth itself costs.
            Scenario.FIRST_PAGE_UNCACHED: measure(
                Scenario.FIRST_PAGE_UNCACHED,
                "4 first page, uncached (a filter)",
                server,
                get_script([FIRST_PAGE_UNCACHED_PATH]),
            ),
            Scenario.DEEP_PAGE_UNCACHED: measure(
                Scenario.DEEP_PAGE_UNCACHED,
                f"5 depth {depth}, uncached (a filter)",
                server,
                get_script([deep_page_path(cursor, FIRST_PAGE_UNCACHED_PATH)]),
            ),
        }

    def _search(self, server: Server) -> dict[Scenario, Result]:
        measure = self.measurements.measure
        script = get_script(search_paths())
        return {
            Scenario.SEARCH: measure(Scenario.SEARCH, "6 search", server, script),
            Scenario.SEARCH_ONE_CONNECTION: measure(
                Scenario.SEARCH_ONE_CONNECTION,
                "6 search, 1 connection",
                server,
                script,
                connections=1,
                threads=1,
            ),
        }

    def _writes(self, server: Server, token: str) -> dict[Scenario, Result]:
        measure = self.measurements.measure
        # One thread per connection: each owns a book (PATCH) or is a user (reviews).
        writers = min(8, self.measurements.load.connections)
        owned = client.owned_book_ids(server.url, token, writers)
        patch = measure(
            Scenario.PATCH_BOOK,
            "7 PATCH book with If-Match",
            server,
            patch_script(owned, token),
            connections=writers,
            threads=writers,
        )
        tokens = [client.sign_in(server.url, f"writer{n}@example.com") for n in range(writers)]
        to_review = client.book_ids(server.url, min(self.books, 40_000))
        review = measure(
            Scenario.POST_REVIEW,
            "7 POST review",
            server,
            lambda run: review_script(to_review, tokens, run),
            connections=writers,
            threads=writers,
        )
        return {Scenario.PATCH_BOOK: patch, Scenario.POST_REVIEW: review}

    def _health_and_signin(self, server: Server) -> dict[Scenario, Result]:
        """`/health` idle, then during a sign-in storm (measured at the same time, in a
        thread): how much hashing passwords slows everything else."""
        measurements = self.measurements
        health = get_script(["/health"])
        idle = measurements.measure(
            Scenario.HEALTH_IDLE,
            "8 /health p99, idle",
            server,
            health,
            connections=2,
            threads=1,
        )
        body = json.dumps({"email": "bench0@example.com", "password": data.PASSWORD})
        storm = post_script("/api/v1/auth/signin", body, {"Content-Type": "application/json"})
        during: list[Result] = []
        probe = threading.Thread(
            target=lambda: during.append(
                measurements.run(
                    Scenario.HEALTH_DURING_SIGNIN_STORM,
                    "8 /health p99, during the storm",
                    server,
                    health,
                    connections=2,
                    threads=1,
                )
            )
        )
        probe.start()
        signin = measurements.run(
            Scenario.SIGNIN_STORM, "8 sign-in storm", server, storm, connections=8, threads=2
        )
        probe.join()
        # Recorded in a fixed order, not in the order the two runs happened to end.
        return {
            Scenario.HEALTH_IDLE: idle,
            Scenario.HEALTH_DURING_SIGNIN_STORM: measurements.record(during[0]),
            Scenario.SIGNIN_STORM: measurements.record(signin),
        }
