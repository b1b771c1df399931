"""A TypeScript client generated from the committed openapi.json by @hey-api/openapi-ts
(pinned in tests/clients/typescript/package-lock.json) compiles under `strict` with a journey
written against it, and the journey runs on Node against a live server: register, verify from
the real email, sign in, an idempotent create and its replay, conditional GET (304) and PATCH
(412 when stale), a review by a second user and its notification, search, a cursor walk,
refresh, logout. Generation must print no warning and the compile no diagnostic.

The journey (tests/clients/typescript/journey.ts) asks this test for what only the server side
has through JSON lines: it writes {"need": "mail", "to": ...} or {"need": "user"} on stdout
and reads the answer on stdin; its last line is {"done": true, "checks": N}."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from pagely.core.resources import Resources
from tests.fixtures.accounts import make_user
from tests.fixtures.smtp import SmtpSink
from tests.fixtures.worker import StartWorker

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "tests" / "clients" / "typescript"
BIN = PROJECT / "node_modules" / ".bin"
PASSWORD = "a-good-long-password"  # make_user's default
# The journey makes 92 checks today: fewer would mean it skipped steps; more is fine.
MIN_CHECKS = 88
JOURNEY_TIMEOUT = 90.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Everything the generator may print on success; any other line (a warning) fails the test.
GENERATOR_LINES = re.compile(
    r"@hey-api/openapi-ts v[\d.]+|\[Job 1\] (⏳ Generating from 1 input:|  \[1\] .+"
    r"|✅ Done! Your output is in .+)"
)


def _run(command: list[str], cwd: Path, timeout: float) -> str:
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"},
    )  # fmt: skip
    report = ANSI.sub("", result.stdout + result.stderr)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{report}"
    return report


def _ensure_node_modules() -> None:
    """`make test` installs them (npm ci); a bare `pytest` on a fresh clone does it here."""
    marker = PROJECT / "node_modules" / ".package-lock.json"
    lock = PROJECT / "package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        assert shutil.which("npm"), "npm is needed for the TypeScript client test"
        _run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], PROJECT, timeout=300)


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generate the client from ROOT/openapi.json into a temporary directory, beside copies of
    journey.ts, tsconfig.json and package.json, and compile the lot with tsc; the compiled
    journey.js."""
    node = shutil.which("node")
    assert node, "Node.js is needed for the TypeScript client test"
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True, timeout=30
    )
    assert int(version.stdout.strip().lstrip("v").split(".")[0]) >= 20, version.stdout
    _ensure_node_modules()

    work = tmp_path_factory.mktemp("typescript")
    for name in ("journey.ts", "tsconfig.json", "package.json"):
        shutil.copy(PROJECT / name, work / name)
    (work / "node_modules").symlink_to(PROJECT / "node_modules", target_is_directory=True)

    report = _run(
        [
            str(BIN / "openapi-ts"),
            "--file", str(PROJECT / "openapi-ts.config.ts"),
            "--input", str(ROOT / "openapi.json"),
            "--output", str(work / "client"),
            "--no-log-file",
        ],
        PROJECT, timeout=120,
    )  # fmt: skip
    assert (work / "client" / "sdk.gen.ts").is_file(), report
    unexpected = [line for line in report.splitlines()
                  if line.strip() and not GENERATOR_LINES.fullmatch(line.strip())]  # fmt: skip
    assert unexpected == [], report

    compiled = _run(
        [str(BIN / "tsc"), "--project", str(work / "tsconfig.json"), "--pretty", "false"],
        work, timeout=120,
    )  # fmt: skip
    assert compiled.strip() == "", compiled
    script = work / "dist" / "journey.js"
    assert script.is_file(), sorted(str(p.relative_to(work)) for p in work.rglob("dist/*"))
    return script


def _plain_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, f"no text/plain part in {message['Subject']!r}"
    content = part.get_content()
    assert isinstance(content, str)
    return content


class Answers:
    """What the journey may ask for: mail (the newest message to an address it has not had
    yet) and verified users."""

    def __init__(self, resources: Resources, smtp_sink: SmtpSink) -> None:
        self.resources = resources
        self.smtp_sink = smtp_sink
        self.served: dict[str, int] = {}  # address -> messages already handed over

    async def mail(self, address: str) -> dict[str, Any]:
        count = 1
        while True:
            messages = await self.smtp_sink.wait_for(count)
            mine = [m for m in messages if address in m.get("X-Envelope-To", "").split(", ")]
            if len(mine) > self.served.get(address, 0):
                self.served[address] = len(mine)
                return {"text": _plain_text(mine[-1])}
            count = len(messages) + 1

    async def user(self) -> dict[str, Any]:
        user = await make_user(self.resources, name="Rita Reader")
        return {"email": user.email, "password": PASSWORD}

    async def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        match request:
            case {"need": "mail", "to": str(address)}:
                return await self.mail(address)
            case {"need": "user"}:
                return await self.user()
        raise AssertionError(f"the journey asked for something unknown: {request}")


async def _drive(process: asyncio.subprocess.Process, answers: Answers) -> dict[str, Any]:
    """Answer the journey's requests until its done line; returns that line."""
    assert process.stdout is not None
    assert process.stdin is not None
    while True:
        raw = await process.stdout.readline()
        assert raw, "the journey ended without a done line"
        line = json.loads(raw)
        assert isinstance(line, dict), line
        if line.get("done") is True:
            assert await process.stdout.read() == b"", "output after the done line"
            return line
        process.stdin.write((json.dumps(await answers.answer(line)) + "\n").encode())
        await process.stdin.drain()


async def test_the_typescript_client_runs_the_whole_journey(
    journey: Path,
    live_server: str,
    resources: Resources,
    smtp_sink: SmtpSink,
    start_worker: StartWorker,
) -> None:
    start_worker()
    process = await asyncio.create_subprocess_exec(
        "node", str(journey), live_server,
        cwd=journey.parent,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    stderr = asyncio.ensure_future(process.stderr.read())
    done: dict[str, Any] | None = None
    failure: BaseException | None = None
    try:
        async with asyncio.timeout(JOURNEY_TIMEOUT):
            try:
                done = await _drive(process, answers=Answers(resources, smtp_sink))
            finally:
                if process.stdin is not None:
                    process.stdin.close()
            await process.wait()
    except (AssertionError, TimeoutError, json.JSONDecodeError) as error:
        failure = error
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = (await asyncio.wait_for(stderr, 10)).decode(errors="replace")
    assert failure is None, f"{failure!r}\n--- journey stderr ---\n{log}"
    assert process.returncode == 0, f"exit {process.returncode}\n--- journey stderr ---\n{log}"
    assert done is not None
    assert done["checks"] >= MIN_CHECKS, f"{done}\n--- journey stderr ---\n{log}"
