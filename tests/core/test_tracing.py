"""Traces over real processes and a real OTLP/HTTP receiver (the SDK's protobuf export,
decoded): a registration's request, its SQL and Redis, the outbox dispatch, the worker's
delivery and the SMTP send are one trace; the log lines name it; no token reaches a span."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pagely.devtools.otlp import OtlpReceiver, ReceivedSpan
from pagely.settings import Settings
from tests.fixtures.servers import serve_process
from tests.fixtures.smtp import SmtpSink
from tests.fixtures.worker import StartWorker

API = "/api/v1"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver.running() as running:
        yield running


def _otel(receiver: OtlpReceiver) -> dict[str, Any]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within a tenth of a second, not five
        "OTEL_TRACES_SAMPLER": "always_on",
    }


def _spans_when(
    receiver: OtlpReceiver, ready: Callable[[list[ReceivedSpan]], bool], what: str
) -> list[ReceivedSpan]:
    """The spans received so far, once `ready` holds for them (20 s at most)."""
    deadline = time.monotonic() + 20
    while not ready(spans := receiver.snapshot()):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} in {[s.name for s in spans]}")
        time.sleep(0.1)
    return spans


def _wait_for_spans(receiver: OtlpReceiver, trace_id: str, names: set[str]) -> list[ReceivedSpan]:
    def complete(spans: list[ReceivedSpan]) -> bool:
        return names <= {s.name for s in spans if s.trace_id == trace_id}

    spans = _spans_when(receiver, complete, f"{sorted(names)} in trace {trace_id}")
    return [s for s in spans if s.trace_id == trace_id]


def _wait_for_span(receiver: OtlpReceiver, name: str) -> ReceivedSpan:
    spans = _spans_when(receiver, lambda spans: any(s.name == name for s in spans), repr(name))
    [span] = [s for s in spans if s.name == name]
    return span


def _json_lines(path: Path) -> list[dict[str, object]]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


async def test_a_registration_is_one_trace_from_request_to_smtp(
    settings: Settings,
    smtp_sink: SmtpSink,
    start_worker: StartWorker,
    receiver: OtlpReceiver,
    tmp_path: Path,
) -> None:
    worker = start_worker(**_otel(receiver))
    email = f"traced-{uuid.uuid4().hex[:8]}@example.com"
    with serve_process(settings, tmp_path, **_otel(receiver)) as url:
        http = httpx.AsyncClient(base_url=url)
        registered = await http.post(
            f"{API}/auth/register",
            json={"email": email, "password": "a-good-long-password", "name": "Traced"},
            headers={"X-Request-ID": "trace-me-0001"},
        )
        assert registered.status_code == 202, registered.text
        [mail] = await smtp_sink.wait_for(1)

        server = _wait_for_span(receiver, "POST /auth/register")
        assert server.service == "pagely-api"
        assert server.attributes["http.route"] == "/auth/register"
        spans = _wait_for_spans(
            receiver, server.trace_id, {"outbox.dispatch", "outbox.deliver", "smtp.send"}
        )
        by_name = {s.name: s for s in spans}
        # The API's part: its statements and Redis commands under the request.
        api = [s for s in spans if s.service == "pagely-api"]
        assert any(s.attributes.get("db.system") == "postgresql" for s in api)
        assert any(s.attributes.get("db.system") == "redis" for s in api)
        assert by_name["outbox.dispatch"].service == "pagely-api"
        # The worker's: the delivery continues the request's trace, the send under it.
        deliver, send = by_name["outbox.deliver"], by_name["smtp.send"]
        assert deliver.service == send.service == "pagely-worker"
        assert send.parent_span_id == deliver.span_id
        assert any(
            s.attributes.get("db.system") == "postgresql" and s.parent_span_id == deliver.span_id
            for s in spans
        )
        # ... and links to the task run that carried it, which continues the publish's span
        # (the sweep's trace instead when the sweep dispatched it).
        assert deliver.links == (server.trace_id,)
        publish = [s for s in spans if s.name.startswith("apply_async/")]
        assert [s.service for s in publish] == ["pagely-api"]

        # A token in a path never reaches a span: the verification link's.
        body = mail.get_body(("plain",))
        assert body is not None
        links = re.findall(r"/auth/verify/([A-Za-z0-9._~-]+)", body.get_content())
        [token] = set(links)
        verified = await http.get(f"{API}/auth/verify/{token}")
        assert verified.status_code == 200
        # Any character in a path, and a client's own trace context, are taken in stride.
        stray = await http.get(f"{API}/tags/日本", headers={
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})  # fmt: skip
        assert stray.status_code == 404
        await http.aclose()
        verify = _wait_for_span(receiver, "GET /auth/verify/{token}")
        assert token not in repr(receiver.snapshot())
        assert "/auth/verify/[redacted]" in str(verify.attributes)  # http.url, http.target
        assert not [
            s for s in receiver.snapshot() if s.trace_id == "0af7651916cd43dd8448eb211c80319c"
        ]

    # The log lines name the trace; the worker's carry the request's id.
    api_lines = _json_lines(tmp_path / "server.log")
    [access] = [line for line in api_lines if line.get("event") == "request"
                and line.get("route") == "/auth/register"]  # fmt: skip
    assert access["trace_id"] == server.trace_id
    [sent] = [line for line in _json_lines(worker.log_path) if line.get("event") == "email_sent"]
    assert sent["request_id"] == "trace-me-0001"
    assert sent["trace_id"] == server.trace_id
    assert sent["span_id"] == deliver.span_id


def test_tracing_is_off_without_an_endpoint(settings: Settings, tmp_path: Path) -> None:
    with serve_process(settings, tmp_path) as url:
        assert httpx.get(f"{url}{API}/books").status_code == 200
    lines = _json_lines(tmp_path / "server.log")
    assert any(line.get("event") == "request" for line in lines)
    assert not any("trace_id" in line for line in lines)
    assert not any(line.get("event") == "tracing_on" for line in lines)
