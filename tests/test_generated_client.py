"""A client generated from the committed openapi.json by a third-party generator
(openapi-python-client, standing in for the Dart generator) runs the whole journey against a
live server: register, verify with the token from the real email, sign in, add a book, have
it reviewed, list, search, log out. Generation must produce no warning."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from pagely.core.resources import Resources
from tests.fixtures.accounts import make_user
from tests.fixtures.smtp import SmtpSink
from tests.fixtures.worker import StartWorker

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "a-good-long-password"
GENERATOR = "openapi-python-client==0.29.1"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("generated")
    (out / "config.yaml").write_text("post_hooks: []\n")
    result = subprocess.run(
        [
            # Isolated from the project's environment (it pins its own typer), and pinned.
            str(Path(sys.executable).parent / "uv"), "tool", "run", "--from",
            GENERATOR, "openapi-python-client",
            "generate",
            "--path", str(ROOT / "openapi.json"),
            "--meta", "none",
            "--output-path", str(out / "pagely_client"),
            "--config", str(out / "config.yaml"),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "warning" not in report.lower(), report
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("pagely_client")
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n.startswith("pagely_client")]:
            del sys.modules[name]


def _api(package: Any, tag: str, operation: str) -> Any:
    return importlib.import_module(f"{package.__name__}.api.{tag}.{operation}")


def _model(package: Any, name: str) -> Any:
    return getattr(importlib.import_module(f"{package.__name__}.models"), name)


async def test_the_generated_client_runs_the_whole_journey(
    generated: Any,
    live_server: str,
    resources: Resources,
    smtp_sink: SmtpSink,
    start_worker: StartWorker,
) -> None:
    start_worker()
    client = generated.Client(base_url=live_server, raise_on_unexpected_status=True)
    email = f"flutter-{uuid.uuid4().hex[:6]}@example.com"

    registered = await _api(generated, "auth", "auth_register").asyncio_detailed(
        client=client,
        body=_model(generated, "RegisterIn")(email=email, password=PASSWORD, name="Flutter Dev"),
    )
    assert registered.status_code == 202

    [message] = await smtp_sink.wait_for(1)
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    token = re.search(r"/auth/verify/(\S+)", text.get_content())
    assert token, "no verification link in the email"
    verified = await _api(generated, "auth", "auth_verify").asyncio(
        client=client, body=_model(generated, "TokenIn")(token=token.group(1))
    )
    assert verified.status == "verified"

    signin = _api(generated, "auth", "auth_signin")
    pair = await signin.asyncio(
        client=client, body=_model(generated, "SigninIn")(email=email, password=PASSWORD)
    )
    assert pair.token_type == "bearer"
    me_client = generated.AuthenticatedClient(base_url=live_server, token=pair.access_token)
    me = await _api(generated, "auth", "auth_me").asyncio(client=me_client)
    assert (me.email, me.is_verified) == (email, True)

    book = await _api(generated, "books", "books_create").asyncio(
        client=me_client,
        body=_model(generated, "BookIn")(
            title="The Dispossessed", authors=["Ursula K. Le Guin"], isbn="978-0-06-051275-0",
            tags=["science fiction"],
        ),
        idempotency_key=str(uuid.uuid4()),
    )  # fmt: skip
    assert (book.isbn13, book.tags) == ("9780060512750", ["science-fiction"])

    reader = await make_user(resources, name="Rita Reader")
    reader_pair = await signin.asyncio(
        client=client, body=_model(generated, "SigninIn")(email=reader.email, password=PASSWORD)
    )
    reader_client = generated.AuthenticatedClient(
        base_url=live_server, token=reader_pair.access_token
    )
    review = await _api(generated, "reviews", "reviews_create").asyncio(
        client=reader_client,
        book_id=uuid.UUID(str(book.id)),
        body=_model(generated, "ReviewIn")(rating=5, title="Anarres"),
    )
    assert review.book.rating_count == 1

    books_list = _api(generated, "books", "books_list")
    listed = await books_list.asyncio(client=client, limit=10)
    assert str(book.id) in [str(item.id) for item in listed.items]
    found = await books_list.asyncio(client=client, q="dispossessed le guin")
    assert str(found.items[0].id) == str(book.id)
    reviews = await _api(generated, "reviews", "reviews_list").asyncio(
        client=client, book_id=uuid.UUID(str(book.id))
    )
    assert (reviews.rating_avg, reviews.items[0].user_name) == (5.0, "Rita Reader")
    notes = await _api(generated, "notifications", "notifications_list").asyncio(client=me_client)
    assert notes.items[0].kind == "review_created"

    out = await _api(generated, "auth", "auth_logout").asyncio_detailed(client=me_client)
    assert out.status_code == 204
    refused = await _api(generated, "auth", "auth_me").asyncio_detailed(client=me_client)
    assert refused.status_code == 401
    assert refused.parsed.error.type_ == "invalid_token"
