"""`make bench`: prepare services and data, serve Pagely and the two references (R0, R1) with
the same uvicorn settings, load each with wrk (warm-up, then repeats; medians reported), and
print ratios. Absolute numbers alone mean little on a shared machine; ratios to R1/R0 from the
same run do.

    python -m bench [--books 100000] [--duration 5] [--repeats 3] [--connections 32]
    python -m bench --scale          # scenarios 4, 5, 6 at 10k, 100k and 1M books
    python -m bench --smoke          # tiny catalog, 1 s per scenario (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import data
from pagely.core.hashing import hash_password_sync
from pagely.devtools.dbadmin import create_database, database_url
from pagely.devtools.embedded import DevStack, free_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
UNLIMITED = "100000000/minute"

# --- wrk ------------------------------------------------------------------------------------

_DONE = """
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
               + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'BENCH {"requests": %d, "seconds": %f, "errors": %d, "p50": %f, "p95": %f, "p99": %f}\\n',
    summary.requests, summary.duration / 1e6, errors,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""

_PATHS = """
local paths = {%s}
local headers = {%s}
request = function()
  return wrk.format("GET", paths[math.random(#paths)], headers)
end
"""

_POST = """
local paths = {%s}
local bodies = {%s}
local headers = {%s}
request = function()
  local i = math.random(#paths)
  return wrk.format("POST", paths[i], headers, bodies[((i - 1) %% #bodies) + 1])
end
"""

# One connection per thread: each thread owns a book and sends back the ETag it last got.
_PATCH = """
local ids = {%s}
local token = %s
local counter = 0
local threads = {}
setup = function(thread)
  counter = counter + 1
  thread:set("book", ids[counter])
  table.insert(threads, thread)
end
init = function(args) etag = "*" end
request = function()
  return wrk.format("PATCH", "/api/v1/books/" .. book,
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json",
     ["If-Match"] = etag},
    '{"page_count": ' .. math.random(100, 900) .. '}')
end
response = function(status, headers, body)
  if headers["ETag"] then etag = headers["ETag"] end
end
"""

# Each thread reviews its own run of books with its own user: every (user, book) is new.
_REVIEW = """
local ids = {%s}
local tokens = {%s}
local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("slot", counter)
end
init = function(args) n = 0 end
request = function()
  n = n + 1
  local book = ids[((slot - 1) * 5000 + RUN * 600 + n - 1) %% #ids + 1]
  return wrk.format("POST", "/api/v1/books/" .. book .. "/reviews",
    {["Authorization"] = "Bearer " .. tokens[slot], ["Content-Type"] = "application/json"},
    '{"rating": ' .. math.random(1, 5) .. ', "body": "Benchmark review text of a modest size."}')
end
"""


def _lua_list(values: list[str]) -> str:
    return ", ".join(json.dumps(v) for v in values)


def _lua_headers(headers: dict[str, str]) -> str:
    return ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())


@dataclass
class Run:
    rps: float
    p50: float
    p95: float
    p99: float
    errors: int


@dataclass
class Result:
    scenario: str
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


def wrk(url: str, script: str, *, connections: int, threads: int, seconds: float) -> Run:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script + _DONE)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t",
                str(threads),
                "-c",
                str(connections),
                "-d",
                f"{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                handle.name,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
    finally:
        os.unlink(handle.name)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    stats = json.loads(line[6:])
    return Run(
        rps=stats["requests"] / stats["seconds"],
        p50=stats["p50"],
        p95=stats["p95"],
        p99=stats["p99"],
        errors=stats["errors"],
    )


# --- servers ----------------------------------------------------------------------------------


class Server:
    def __init__(self, name: str, args: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        # Logs go to a file as in production (never to a pipe nobody reads: it would fill).
        self.log_path = Path(tempfile.gettempdir()) / f"pagely-bench-{name}-{port}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        self.peak_rss = 0
        self._sampling = False

    def wait(self, probe: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} exited: {tail}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + probe, timeout=2).status_code < 500:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start")

    def rss(self) -> int:
        try:
            root = psutil.Process(self.proc.pid)
            return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except psutil.Error:
            return 0

    @contextlib.contextmanager
    def sampling(self) -> Iterator[None]:
        self._sampling = True

        def sample() -> None:
            while self._sampling:
                self.peak_rss = max(self.peak_rss, self.rss())
                time.sleep(0.2)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._sampling = False
            thread.join()

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, 15)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
        self._log.close()


def uvicorn_args(target: str, port: int, workers: int, factory: bool = False) -> list[str]:
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return [*args, "--factory"] if factory else args


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Options:
    books: int
    duration: float
    warmup: float
    repeats: int
    connections: int
    workers: list[int]
    scale: bool
    smoke: bool


class Bench:
    def __init__(self, options: Options, env: dict[str, str]) -> None:
        self.o = options
        self.env = env
        self.results: list[Result] = []

    def log(self, message: str) -> None:
        print(message, flush=True)

    def measure(
        self,
        name: str,
        server: Server,
        script: str | Any,
        *,
        connections: int | None = None,
        threads: int | None = None,
    ) -> Result:
        c = connections or self.o.connections
        t = threads or min(c, 2)

        # A script may depend on the run (0 is the warm-up), so writes never repeat a key.
        def text(run: int) -> str:
            return script(run) if callable(script) else str(script)

        if self.o.warmup:
            wrk(server.url, text(0), connections=c, threads=t, seconds=self.o.warmup)
        runs = []
        with server.sampling():
            for run in range(1, self.o.repeats + 1):
                runs.append(
                    wrk(server.url, text(run), connections=c, threads=t, seconds=self.o.duration)
                )
        result = Result(
            scenario=name,
            server=server.name,
            connections=c,
            rps=statistics.median(r.rps for r in runs),
            p50_ms=statistics.median(r.p50 for r in runs),
            p95_ms=statistics.median(r.p95 for r in runs),
            p99_ms=statistics.median(r.p99 for r in runs),
            errors=sum(r.errors for r in runs),
            runs=[asdict(r) for r in runs],
        )
        self.results.append(result)
        self.log(
            f"  {name:<34} {result.rps:>9.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
            f"p99 {result.p99_ms:7.2f} ms  errors {result.errors}"
        )
        return result

    # --- preparation ---------------------------------------------------------------------

    def sign_in(self, base: str, email: str) -> str:
        response = httpx.post(
            f"{base}/api/v1/auth/signin",
            json={"email": email, "password": data.PASSWORD},
            timeout=30,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def book_ids(self, base: str, count: int) -> list[str]:
        ids: list[str] = []
        cursor = None
        while len(ids) < count:
            params: dict[str, Any] = {"limit": 100, "sort": "title"}
            if cursor:
                params["cursor"] = cursor
            page = httpx.get(f"{base}/api/v1/books", params=params, timeout=30).json()
            ids += [b["id"] for b in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
        return ids[:count]

    def deep_cursor(self, base: str, depth: int) -> str:
        """Walk the default listing 100 at a time to `depth`, and keep the cursor there."""
        cursor: str | None = None
        walked = 0
        while walked < depth:
            params: dict[str, Any] = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            page = httpx.get(f"{base}/api/v1/books", params=params, timeout=30).json()
            walked += len(page["items"])
            if not page["next_cursor"]:
                break
            cursor = page["next_cursor"]
        assert cursor is not None
        return cursor

    def prime(self, base: str) -> None:
        """Read every sampled book once, so scenarios 1 and 2 measure hot reads (what they are
        about) from their first second, not the cache filling up."""
        with httpx.Client(base_url=base, timeout=30) as client:
            for book_id in self.sample_ids:
                client.get(f"/api/v1/books/{book_id}").raise_for_status()

    # --- scenarios -------------------------------------------------------------------------

    def references(self, workers: int) -> dict[str, Result]:
        refs = {}
        for name, target in (("R0", "bench.reference:r0"), ("R1", "bench.reference:r1")):
            port = free_port()
            server = Server(name, uvicorn_args(target, port, workers), self.env, port)
            try:
                if name == "R1":
                    ids = self.sample_ids
                    server.wait("/r1/" + ids[0])
                    script = _PATHS % (_lua_list([f"/r1/{i}" for i in ids]), "")
                else:
                    server.wait("/")
                    script = _PATHS % ('"/"', "")
                refs[name] = self.measure(f"{name} (workers={workers})", server, script)
            finally:
                server.stop()
        return refs

    def pagely(self, workers: int, full: bool) -> tuple[dict[str, Result], int]:
        port = free_port()
        args = [
            sys.executable,
            "-m",
            "pagely.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        server = Server("pagely", args, self.env, port)
        out: dict[str, Result] = {}
        try:
            server.wait("/health/ready")
            base = server.url
            token = self.sign_in(base, "bench0@example.com")
            auth = {"Authorization": f"Bearer {token}"}
            paths = _lua_list([f"/api/v1/books/{i}" for i in self.sample_ids])
            w = f" (workers={workers})"
            self.prime(base)
            out["1"] = self.measure("1 book by id, anonymous" + w, server, _PATHS % (paths, ""))
            out["2"] = self.measure(
                "2 book by id, bearer" + w, server, _PATHS % (paths, _lua_headers(auth))
            )
            out["3"] = self.measure(
                "3 /auth/me, bearer" + w, server, _PATHS % ('"/api/v1/auth/me"', _lua_headers(auth))
            )
            if not full:
                return out, server.peak_rss
            out["4"] = self.measure(
                "4 list, first page", server, _PATHS % ('"/api/v1/books?limit=20"', "")
            )
            depth = min(50_000, self.o.books // 2)
            cursor = self.deep_cursor(base, depth)
            out["5"] = self.measure(
                f"5 list at depth {depth}",
                server,
                _PATHS % (json.dumps(f"/api/v1/books?limit=20&cursor={cursor}"), ""),
            )
            # The same two pages with a filter, which the cache never holds: both from
            # PostgreSQL, so their ratio shows what depth itself costs.
            out["4u"] = self.measure(
                "4 first page, uncached (a filter)",
                server,
                _PATHS % ('"/api/v1/books?limit=20&language=en"', ""),
            )
            out["5u"] = self.measure(
                f"5 depth {depth}, uncached (a filter)",
                server,
                _PATHS % (json.dumps(f"/api/v1/books?limit=20&language=en&cursor={cursor}"), ""),
            )
            queries = _lua_list([f"/api/v1/books?q={w}" for w in data.search_words()])
            out["6"] = self.measure("6 search", server, _PATHS % (queries, ""))
            out["6@1"] = self.measure(
                "6 search, 1 connection", server, _PATHS % (queries, ""), connections=1, threads=1
            )
            writers = min(8, self.o.connections)
            owner_ids = self.owned_ids(base, token, writers)
            out["7a"] = self.measure(
                "7 PATCH book with If-Match",
                server,
                _PATCH % (_lua_list(owner_ids), json.dumps(token)),
                connections=writers,
                threads=writers,
            )
            tokens = [self.sign_in(base, f"writer{n}@example.com") for n in range(writers)]
            review_ids = self.book_ids(base, min(self.o.books, 40_000))
            out["7b"] = self.measure(
                "7 POST review",
                server,
                lambda run: f"RUN = {run}\n" + _REVIEW % (_lua_list(review_ids), _lua_list(tokens)),
                connections=writers,
                threads=writers,
            )
            out["8idle"] = self.measure(
                "8 /health p99, idle", server, _PATHS % ('"/health"', ""), connections=2, threads=1
            )
            out.update(self.signin_storm(server))
        finally:
            server.stop()
        return out, server.peak_rss

    def owned_ids(self, base: str, token: str, count: int) -> list[str]:
        me = httpx.get(
            f"{base}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
        ).json()
        page = httpx.get(
            f"{base}/api/v1/books", params={"owner_id": me["id"], "limit": count}
        ).json()
        return [b["id"] for b in page["items"]]

    def signin_storm(self, server: Server) -> dict[str, Result]:
        body = json.dumps({"email": "bench0@example.com", "password": data.PASSWORD})
        storm = _POST % (
            '"/api/v1/auth/signin"',
            _lua_list([body]),
            _lua_headers({"Content-Type": "application/json"}),
        )
        health: list[Result] = []

        def probe() -> None:
            health.append(
                self.measure(
                    "8 /health p99, during the storm",
                    server,
                    _PATHS % ('"/health"', ""),
                    connections=2,
                    threads=1,
                )
            )

        thread = threading.Thread(target=probe)
        thread.start()
        signin = self.measure("8 sign-in storm", server, storm, connections=8, threads=2)
        thread.join()
        return {"8": signin, "8storm": health[0]}


def _ratio(result: Result, reference: Result, name: str) -> None:
    result.ratio = result.rps / reference.rps if reference.rps else None
    result.ratio_to = name


def _hash_ms() -> float:
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        hash_password_sync("a-good-long-password")
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def evaluate(
    refs: dict[str, Result],
    out: dict[str, Result],
    refs2: dict[str, Result] | None,
    out2: dict[str, Result] | None,
) -> list[str]:
    r0, r1 = refs["R0"], refs["R1"]
    for key in ("1", "2", "3", "4", "5", "4u", "5u", "6", "7a", "7b"):
        if key in out:
            _ratio(out[key], r1, "R1")
    for key in ("8", "8idle", "8storm"):
        if key in out:
            _ratio(out[key], r0, "R0")
    notes = []

    def target(key: str, text: str, met: bool) -> None:
        if key in out:
            out[key].target, out[key].met = text, met

    if "1" in out:
        target("1", ">= 1.2 x R1", (out["1"].ratio or 0) >= 1.2)
        target("2", ">= 0.8 x R1", (out["2"].ratio or 0) >= 0.8)
        target("3", ">= 0.8 x R1", (out["3"].ratio or 0) >= 0.8)
    if "4" in out:
        target("4", ">= 0.5 x R1", (out["4"].ratio or 0) >= 0.5)
        target("5", "p50 <= 1.3 x scenario 4 p50", out["5"].p50_ms <= 1.3 * out["4"].p50_ms)
        target("5u", "p50 <= 1.3 x 4 uncached p50", out["5u"].p50_ms <= 1.3 * out["4u"].p50_ms)
        target("6@1", "p95 <= 25 ms", out["6@1"].p95_ms <= 25)
        target("6", ">= 0.25 x R1", (out["6"].ratio or 0) >= 0.25)
    if "8" in out:
        target("8storm", "p99 <= 3 x idle p99", out["8storm"].p99_ms <= 3 * out["8idle"].p99_ms)
        hash_ms = _hash_ms()
        ideal = (os.cpu_count() or 1) * 1000 / hash_ms
        target(
            "8",
            f"within 20% of {ideal:.0f}/s (cores x 1000 / {hash_ms:.0f} ms hash)",
            out["8"].rps >= 0.8 * ideal,
        )
    for result in out.values():
        if result.errors:
            notes.append(f"{result.scenario}: {result.errors} errors")
    if out2 and "2" in out2 and "2" in out:
        scaling = out2["2"].rps / out["2"].rps
        notes.append(f"scenario 2 with 2 workers: {scaling:.2f}x one worker (target >= 1.6x)")
        out2["2"].target, out2["2"].met = ">= 1.6 x one worker", scaling >= 1.6
        if refs2:
            _ratio(out2["2"], refs2["R1"], "R1 (2 workers)")
    return notes


def table(results: list[Result], peak: dict[str, int]) -> str:
    head = (
        f"{'scenario':<40} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6} "
        f"{'ratio':>12}  target"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        ratio = f"{r.ratio:.2f} x {r.ratio_to}" if r.ratio is not None else ""
        mark = "" if r.met is None else ("  met" if r.met else "  MISSED")
        lines.append(
            f"{r.scenario:<40} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p95_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.errors:>6} {ratio:>12}  {r.target or ''}{mark}"
        )
    for name, rss in peak.items():
        lines.append(f"peak RSS of the API ({name}): {rss / 2**20:.0f} MiB")
    return "\n".join(lines)


# --- services and the whole run ------------------------------------------------------------


@contextlib.contextmanager
def services() -> Iterator[tuple[str, str]]:
    """(server DSN for SQLAlchemy, Redis URL): the machine's through BENCH_/TEST_/plain
    variables, else embedded ones exactly as `make run` starts them."""
    db = next(
        (
            os.environ[v]
            for v in ("BENCH_DATABASE_URL", "TEST_DATABASE_URL", "DATABASE_URL")
            if os.environ.get(v)
        ),
        None,
    )
    redis = next(
        (
            os.environ[v]
            for v in ("BENCH_REDIS_URL", "TEST_REDIS_URL", "REDIS_URL")
            if os.environ.get(v)
        ),
        None,
    )
    if db and redis:
        yield db, redis
        return
    with DevStack(want_postgres=not db, want_redis=not redis, want_smtp=False) as stack:
        yield db or stack.env["DATABASE_URL"], redis or stack.env["REDIS_URL"]


def _redis_db(url: str, index: int) -> str:
    base = url.split("?")[0].rsplit("/", 1)
    return f"{base[0]}/{index}" if base[-1].isdigit() else f"{url.rstrip('/')}/{index}"


def prepare(server_dsn: str, books: int) -> str:
    from pagely.core import migrations as migrate

    name = f"pagely_bench_{books}"
    url = database_url(server_dsn, name)
    asyncio.run(create_database(server_dsn, name, if_missing=True))
    migrate.upgrade(url)
    asyncio.run(data.generate(url.replace("postgresql+asyncpg://", "postgresql://"), books))
    return url


def environment(db_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    redis = _redis_db(redis_url, 14)
    env.update(
        ENVIRONMENT="production",
        JWT_SECRET="bench-" + "k" * 60,
        DATABASE_URL=db_url,
        BENCH_PG_DSN=db_url.replace("postgresql+asyncpg://", "postgresql://"),
        REDIS_URL=redis,
        CELERY_BROKER_URL=redis,
        LOG_LEVEL="INFO",
        LOG_JSON="true",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONPATH=str(ROOT),
    )
    # The limiter still runs on every request; its limits are lifted so the benchmark
    # measures the work, not refusals.
    for name in (
        "SIGNIN_ACCOUNT",
        "SIGNIN_IP",
        "REGISTER_IP",
        "EMAIL_ACCOUNT",
        "EMAIL_IP",
        "REFRESH_SESSION",
    ):
        env[f"RATE_LIMIT_{name}"] = UNLIMITED
    return env


def run(options: Options) -> int:
    if shutil.which("wrk") is None:
        print("wrk is not installed: run `make bench-deps` (apt-get install wrk)", file=sys.stderr)
        return 2
    started = time.monotonic()
    with services() as (server_dsn, redis_url):
        if options.scale:
            return scale(options, server_dsn, redis_url)
        db_url = prepare(server_dsn, options.books)
        asyncio.run(data.reset_writes(db_url.replace("postgresql+asyncpg://", "postgresql://")))
        bench = Bench(options, environment(db_url, redis_url))
        bench.sample_ids = sample_ids(db_url)
        print(
            f"== one worker ({options.books} books, {options.connections} connections, "
            f"{options.repeats} x {options.duration:g}s per scenario)"
        )
        refs = bench.references(1)
        out, peak1 = bench.pagely(1, full=True)
        refs2 = out2 = None
        peak = {"1 worker": peak1}
        if 2 in options.workers:
            print("== two workers")
            refs2 = bench.references(2)
            out2, peak["2 workers"] = bench.pagely(2, full=False)
        notes = evaluate(refs, out, refs2, out2)
        report = table(bench.results, peak)
        print()
        print(report)
        for note in notes:
            print(note)
        write_results(options, bench.results, peak, notes, time.monotonic() - started)
    return 0


def sample_ids(db_url: str, count: int = 5000) -> list[str]:
    import asyncpg

    async def fetch() -> list[str]:
        conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            rows = await conn.fetch("SELECT id FROM books ORDER BY random() LIMIT $1", count)
            return [str(r["id"]) for r in rows]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def write_results(
    options: Options, results: list[Result], peak: dict[str, int], notes: list[str], seconds: float
) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        ).stdout.strip()
        or "unknown"
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{stamp}-{commit}.json"
    path.write_text(
        json.dumps(
            {
                "commit": commit,
                "options": asdict(options),
                "cpu_count": os.cpu_count(),
                "results": [asdict(r) for r in results],
                "peak_rss_bytes": peak,
                "notes": notes,
                "seconds": seconds,
            },
            indent=2,
        )
    )
    print(f"results: {path.relative_to(ROOT)}")
    return path


def scale(options: Options, server_dsn: str, redis_url: str) -> int:
    """Scenarios 4, 5 and 6 at 10k, 100k and 1M books: how latency grows with the catalog."""
    sizes = [1_000, 5_000] if options.smoke else [10_000, 100_000, 1_000_000]
    rows = []
    for books in sizes:
        db_url = prepare(server_dsn, books)
        bench = Bench(
            Options(**{**asdict(options), "books": books}), environment(db_url, redis_url)
        )
        bench.sample_ids = sample_ids(db_url)
        port = free_port()
        server = Server(
            "pagely",
            [sys.executable, "-m", "pagely.cli", "serve", "--port", str(port)],
            bench.env,
            port,
        )
        try:
            server.wait("/health/ready")
            depth = min(50_000, books // 2)
            cursor = bench.deep_cursor(server.url, depth)
            queries = _lua_list([f"/api/v1/books?q={w}" for w in data.search_words()])
            r4 = bench.measure(
                f"4 first page, {books} books",
                server,
                _PATHS % ('"/api/v1/books?limit=20&language=en"', ""),
            )
            r5 = bench.measure(
                f"5 depth {depth}, {books} books",
                server,
                _PATHS % (json.dumps(f"/api/v1/books?limit=20&cursor={cursor}"), ""),
            )
            r6 = bench.measure(
                f"6 search, {books} books", server, _PATHS % (queries, ""), connections=1, threads=1
            )
            rows.append((books, r4, r5, r6))
        finally:
            server.stop()
        explain(db_url, depth)
    print()
    print(f"{'books':>9} {'4 p50 ms':>9} {'5 p50 ms':>9} {'6 p50 ms':>9} {'6 p95 ms':>9}")
    for books, r4, r5, r6 in rows:
        print(f"{books:>9} {r4.p50_ms:>9.2f} {r5.p50_ms:>9.2f} {r6.p50_ms:>9.2f} {r6.p95_ms:>9.2f}")
    first, last = rows[0], rows[-1]
    growth = last[0] / first[0]
    for label, index in (("4", 1), ("5", 2), ("6", 3)):
        ratio = last[index].p50_ms / max(first[index].p50_ms, 1e-6)
        print(
            f"scenario {label}: catalog x{growth:.0f}, p50 x{ratio:.2f} "
            f"({'sub-linear' if ratio < growth else 'NOT sub-linear'})"
        )
    write_results(options, [r for row in rows for r in row[1:]], {}, [], 0)
    return 0


def explain(db_url: str, depth: int) -> None:
    """The plans behind scenarios 4 and 5 (uncached) and 6, so a regression shows where the
    time goes. Each statement is built by the application's own `books.page_statement`, so
    the plan shown is the plan the API runs."""
    import asyncpg
    from sqlalchemy import DateTime, Uuid, literal
    from sqlalchemy.dialects import postgresql

    from pagely.catalog.books import queries as books
    from pagely.catalog.books import search

    word = data.search_words()[10]
    english = books.filter_conditions(books.Filters(language="en"))

    def sql(statement: Any) -> str:
        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
        return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

    async def plans() -> None:
        conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            at = await conn.fetchrow(
                "SELECT created_at, id FROM books WHERE language = 'en' "
                "ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1",
                depth,
            )
            query = search.ts_query([word], {})
            for label, statement in (
                (
                    "4 first page, uncached",
                    books.page_statement("-created_at", None, english, None, 20),
                ),
                (
                    f"5 page at depth {depth}, with the filter of 4",
                    books.page_statement(
                        "-created_at",
                        None,
                        english,
                        (literal(at["created_at"], DateTime(True)), literal(at["id"], Uuid())),
                        20,
                    ),
                ),
                (f"6 search for {word!r}", books.page_statement("relevance", query, [], None, 20)),
            ):
                rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql(statement))
                print(f"-- plan: {label}")
                for row in rows:
                    print("   " + row[0])
        finally:
            await conn.close()

    asyncio.run(plans())


def main() -> int:
    parser = argparse.ArgumentParser(description="Pagely benchmark (see docs/performance.md)")
    parser.add_argument("--books", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", default="1,2", help="worker counts, e.g. 1 or 1,2")
    parser.add_argument("--scale", action="store_true", help="10k / 100k / 1M books")
    parser.add_argument("--smoke", action="store_true", help="tiny and quick (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.books, args.duration, args.warmup, args.repeats = min(args.books, 2000), 1, 0, 1
    options = Options(
        books=args.books,
        duration=args.duration,
        warmup=args.warmup,
        repeats=args.repeats,
        connections=args.connections,
        workers=[int(w) for w in args.workers.split(",")],
        scale=args.scale,
        smoke=args.smoke,
    )
    return run(options)


if __name__ == "__main__":
    sys.exit(main())
