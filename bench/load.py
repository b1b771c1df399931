"""wrk, the load generator: the Lua scripts the scenarios send, one wrk run, and its report."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from string import Template


@dataclass(frozen=True)
class Load:
    """How every scenario is driven, unless it says otherwise: `connections` in parallel, a
    warm-up of `warmup` seconds (0 for none), then `repeats` runs of `duration` seconds."""

    connections: int
    duration: float
    warmup: float
    repeats: int


@dataclass
class WrkRun:
    """One wrk run; latencies in milliseconds."""

    rps: float
    p50: float
    p95: float
    p99: float
    errors: int


# Appended to every script: wrk's own summary is text meant for people, so the script writes
# one line of JSON after _REPORT_PREFIX. Errors are socket errors plus answers other than 2xx/3xx.
_REPORT_PREFIX = "BENCH "
_REPORT = """
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
               + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'BENCH {"requests": %d, "seconds": %f, "errors": %d, "p50": %f, "p95": %f, "p99": %f}\\n',
    summary.requests, summary.duration / 1e6, errors,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""

_GET = Template("""
local paths = {$paths}
local headers = {$headers}
request = function()
  return wrk.format("GET", paths[math.random(#paths)], headers)
end
""")

_POST = Template("""
local path = $path
local body = $body
local headers = {$headers}
request = function()
  return wrk.format("POST", path, headers, body)
end
""")

# One connection per thread: each thread owns a book and sends back the ETag it last got.
_PATCH = Template("""
local ids = {$ids}
local token = $token
local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("book", ids[counter])
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
""")

# One connection per thread, each with its own user and its own stretch of books: thread k of
# wrk run r starts at book 5000 (k - 1) + 600 r, so while a thread posts fewer than 600 reviews
# a run, every (user, book) pair is new (the harness deletes these reviews before its next run).
_REVIEW = Template("""
local ids = {$ids}
local tokens = {$tokens}
local run = $run
local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("slot", counter)
end
init = function(args) n = 0 end
request = function()
  n = n + 1
  local book = ids[((slot - 1) * 5000 + run * 600 + n - 1) % #ids + 1]
  return wrk.format("POST", "/api/v1/books/" .. book .. "/reviews",
    {["Authorization"] = "Bearer " .. tokens[slot], ["Content-Type"] = "application/json"},
    '{"rating": ' .. math.random(1, 5) .. ', "body": "Benchmark review text of a modest size."}')
end
""")


def _lua_string(value: str) -> str:
    # A JSON string is a valid Lua string literal for everything the harness sends.
    return json.dumps(value)


def _lua_list(values: Sequence[str]) -> str:
    return ", ".join(_lua_string(v) for v in values)


def _lua_table(headers: Mapping[str, str]) -> str:
    return ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())


def get_script(paths: Sequence[str], headers: Mapping[str, str] | None = None) -> str:
    """GET a path drawn at random from `paths` on every request."""
    return _GET.substitute(paths=_lua_list(paths), headers=_lua_table(headers or {}))


def post_script(path: str, body: str, headers: Mapping[str, str]) -> str:
    return _POST.substitute(
        path=_lua_string(path), body=_lua_string(body), headers=_lua_table(headers)
    )


def patch_script(book_ids: Sequence[str], token: str) -> str:
    """PATCH with If-Match, one book per thread (run it with as many threads as connections,
    and at most as many as `book_ids`)."""
    return _PATCH.substitute(ids=_lua_list(book_ids), token=_lua_string(token))


def review_script(book_ids: Sequence[str], tokens: Sequence[str], run: int) -> str:
    """POST new reviews, one user per thread (as many threads as connections, at most as many
    as `tokens`); `run` numbers the wrk runs of one harness run, so none repeats a review."""
    return _REVIEW.substitute(ids=_lua_list(book_ids), tokens=_lua_list(tokens), run=run)


def wrk(url: str, script: str, *, connections: int, threads: int, seconds: float) -> WrkRun:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script + _REPORT)
    try:
        # wrk counts whole seconds.
        command = ["wrk", "-t", str(threads), "-c", str(connections)]
        command += ["-d", f"{max(1, round(seconds))}s", "--timeout", "10s", "-s", handle.name]
        out = subprocess.run(
            [*command, url], capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    finally:
        os.unlink(handle.name)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith(_REPORT_PREFIX)), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    stats = json.loads(line.removeprefix(_REPORT_PREFIX))
    return WrkRun(
        rps=stats["requests"] / stats["seconds"],
        p50=stats["p50"],
        p95=stats["p95"],
        p99=stats["p99"],
        errors=stats["errors"],
    )
