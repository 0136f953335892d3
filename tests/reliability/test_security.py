"""Secrets hygiene and transport security.

* The partner's API key never shows: not in DEBUG logs (the library, stamina, aiohttp, asyncio),
  not in a repr (client, errors, results, summary, journal objects), not in an exception's text
  or in the text of any exception chained to it (``__cause__``, ``__context__``), not in the
  journal's bytes (with its WAL) and not in the CLI's output at ``-v``.
* ``http://`` to a non-loopback host is refused (client and CLI) unless explicitly allowed.
* TLS certificates are verified by default: a self-signed server fails with ``TLSError``,
  without a retry and without a request reaching the server.
* The emulator binds loopback by default and refuses a non-loopback address without the flag.

Every needle search is shown to work on a positive control first (the key is where it must be:
in the emulator's world, on the wire), so an empty result cannot come from a broken search.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import ssl
import subprocess
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from debitura_async import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    DebituraClient,
    DecodeError,
    IdempotencyConflictError,
    IngestionJobRow,
    JobWaitTimeout,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    RemoteProtocolError,
    RequestTimeout,
    ServerError,
    Timeout,
    TLSError,
    ValidationError,
)
from debitura_async.cli import IngestPlan
from debitura_async.emulator import Emulator, EmulatorConfig, EmulatorProcess, Fault, World
from debitura_async.journal import InputIdentity, JournalStore, RunInfo, SqliteJournal
from debitura_async.models import JobOutcome

from ..cli._support import CRM_MAP, cli_env, run_cli, write_crm_csv
from ._harness import POLICY, SCALE, fast_retry

pytestmark = pytest.mark.anyio

KEY = "sk-live-REL-7f3c9a1e5d2b4c6a8e0f"
NEEDLES = (KEY, KEY[-12:])
"""The key, and its distinctive tail (a partial leak is a leak)."""
WRONG_KEY = "sk-live-WRONG-0b1c2d3e4f5a6b7c"
POST = "POST /ingestion-jobs"
GET = "GET /ingestion-jobs/{jobId}"


def world(key: str = KEY) -> World:
    cases = [str(uuid.UUID(int=i + 1, version=4)) for i in range(8)]
    foreign = [str(uuid.UUID(int=1000 + i, version=4)) for i in range(2)]
    return World.from_dict(
        {
            "partners": [
                {"apiKey": key, "caseIds": cases, "name": "Reliability Partner"},
                {"apiKey": "another-partner-key", "caseIds": foreign},
            ]
        }
    )


def config(**overrides: Any) -> EmulatorConfig:
    settings: dict[str, Any] = {"time_scale": SCALE, "world": world()}
    settings.update(overrides)
    return EmulatorConfig(**settings)


def leaks(text: str, needles: tuple[str, ...] = NEEDLES) -> list[str]:
    return [n for n in needles if n in text]


def chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything chained to it (causes and contexts), each once."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__]
        if isinstance(current, BaseExceptionGroup):
            todo += list(current.exceptions)
    return seen


def exception_texts(exc: BaseException) -> list[str]:
    """Every text an exception shows: str, repr and attributes of it and of everything chained
    to it, and its formatted traceback."""
    texts = ["".join(traceback.format_exception(exc))]
    for e in chain(exc):
        texts += [str(e), repr(e), repr(getattr(e, "__dict__", {})), repr(e.args)]
    return texts


def assert_no_key_in_exception(exc: BaseException, needles: tuple[str, ...] = NEEDLES) -> None:
    for text in exception_texts(exc):
        assert leaks(text, needles) == [], f"the key shows in {type(exc).__name__}: {text}"


# -- logs ------------------------------------------------------------------------------------------


async def test_debug_logs_of_a_faulty_run_never_show_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every logger at DEBUG (debitura_async, stamina, aiohttp, asyncio, the emulator) during a
    run that retries after 429s, 5xx, resets and read timeouts, loses a job (404) and meets a
    401 of a wrong key."""
    faults = (
        Fault("rate_limit", count=2, retry_after=2.0),
        Fault("http_error", count=2, status=502),
        Fault("drop_before", count=2),
        Fault("drop_after", count=2, endpoint=POST),
        Fault("slow", count=1, delay=0.3 * SCALE, endpoint=GET),
        Fault("job_vanish", count=1, after=0.0),
        Fault("job_failed", count=1),
    )
    caplog.set_level(logging.DEBUG)  # the root logger: every library's DEBUG records
    for name in ("debitura_async", "stamina", "aiohttp", "asyncio"):
        # (explicitly: a test may have left a logger at another level)
        caplog.set_level(logging.DEBUG, logger=name)
    async with Emulator(config(faults=faults), access_log=True) as emu:
        rows = [
            IngestionJobRow(emu.case_ids[i % 8], f"n{i}", external_ref=f"L{i}") for i in range(60)
        ]
        timeout = Timeout(total=1.0, connect=0.5, read=0.1)
        async with DebituraClient(KEY, base_url=emu.url, retry=fast_retry(), timeout=timeout) as c:
            summary = await c.ingest_all(rows, batch_size=10, polling=POLICY)
            await c.me()
        async with DebituraClient(WRONG_KEY, base_url=emu.url, max_retries=0) as wrong:
            with pytest.raises(AuthenticationError) as refused:
                await wrong.me()
        await asyncio.sleep(0.35)  # the slow handler finishes and logs
    assert summary.retries >= 5
    assert summary.jobs[JobOutcome.UNRESOLVED] == 1
    names = {r.name.split(".")[0] for r in caplog.records}
    assert {"debitura_async", "aiohttp"} <= names, names
    # the retries are logged, through debitura_async.retry (not stamina's logger)
    assert "stamina" not in names, names
    assert any(r.name == "debitura_async.retry" for r in caplog.records)
    formatter = logging.Formatter()
    for record in caplog.records:
        texts = [record.getMessage(), repr(record.args), repr(record.__dict__)]
        if record.exc_info:
            texts.append(formatter.formatException(record.exc_info))
        for text in texts:
            assert leaks(text, (*NEEDLES, WRONG_KEY)) == [], f"{record.name}: {text}"
    assert leaks(caplog.text, (*NEEDLES, WRONG_KEY)) == []
    assert_no_key_in_exception(refused.value, (WRONG_KEY,))


async def test_cli_verbose_output_never_shows_the_key(tmp_path: Path) -> None:
    """``-v`` (DEBUG logs, tracebacks) on ingest with retries, resume, status and whoami, the key
    from the environment and from ``--api-key``; and the journal, its WAL and the report."""
    faults = (
        Fault("http_error", probability=0.1, status=502),
        Fault("drop_after", probability=0.15, endpoint=POST),
        Fault("rate_limit", probability=0.05, retry_after=0.5),
        Fault("slow", count=1, delay=0.2 * 200.0, endpoint=GET),  # outlives the deadline
    )
    cfg = config(faults=faults, time_scale=200.0)
    async with EmulatorProcess(cfg) as emu:
        assert emu.api_key == KEY  # positive control: the key is the one we look for
        sample = write_crm_csv(
            tmp_path / "in.csv", emu.case_ids, 120, invalid={4: {"NoteText": ""}}
        )
        journal, report = tmp_path / "run.sqlite", tmp_path / "report.jsonl"
        common: list[str | Path] = ["--time-scale", "200", "--journal", journal, "--report", report]
        env = cli_env(emu)
        first = await run_cli(
            "-v", "ingest", sample.path, *CRM_MAP, "--batch-size", "10", *common,
            "--deadline", "0.05", env=env,
        )  # fmt: skip
        resumed = await run_cli("-v", "ingest", sample.path, "--resume", *common, env=env)
        by_flag = cli_env()
        flags = ["--base-url", emu.url, "--api-key", KEY]
        status = await run_cli("-v", "status", str(uuid.uuid4()), *flags, env=by_flag)
        whoami = await run_cli("-v", "whoami", "--json", *flags, env=by_flag)
        wrong = await run_cli("-v", "whoami", "--base-url", emu.url, "--api-key", WRONG_KEY)
    assert first.code == 3, first  # the deadline left jobs unresolved
    assert resumed.code == 1, resumed  # the planted empty note
    assert (status.code, whoami.code, wrong.code) == (1, 0, 4), (status, whoami, wrong)
    assert "DEBUG" in first.err
    assert "Reliability Partner" in whoami.out  # the key worked: it was really used
    for result in (first, resumed, status, whoami):
        assert leaks(result.out + result.err) == [], result
    assert leaks(wrong.out + wrong.err, (WRONG_KEY,)) == [], wrong
    files = sorted(p for p in tmp_path.iterdir() if p.is_file())  # noqa: ASYNC240
    assert journal in files
    assert report in files
    for path in files:
        assert leaks(path.read_bytes().decode("latin-1")) == [], path


# -- exceptions and reprs --------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def raw_http_server(answer: bytes) -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1 that reads one request and writes ``answer`` verbatim."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


Trigger = Callable[[Emulator], Awaitable[BaseException]]


async def _raised(call: Awaitable[Any]) -> BaseException:
    try:
        await call
    except Exception as exc:  # noqa: BLE001 - the point: whatever it raised
        return exc
    raise AssertionError("expected an exception")


def _client(emu: Emulator | str, **options: Any) -> DebituraClient:
    url = emu if isinstance(emu, str) else emu.url
    options.setdefault("max_retries", 0)
    return DebituraClient(KEY, base_url=url, **options)


async def _rate_limited(emu: Emulator) -> BaseException:
    await emu.add_fault(Fault("rate_limit", count=1))
    async with _client(emu) as c:
        return await _raised(c.me())


async def _server_error(emu: Emulator) -> BaseException:
    await emu.add_fault(Fault("http_error", count=1, status=502))
    async with _client(emu) as c:
        return await _raised(c.me())


async def _not_found(emu: Emulator) -> BaseException:
    async with _client(emu) as c:
        return await _raised(c.get_ingestion_job(uuid.uuid4()))


async def _too_large(emu: Emulator) -> BaseException:
    async with _client(emu) as c:
        rows = [IngestionJobRow(emu.case_ids[0], "x" * 9000) for _ in range(4)]
        return await _raised(c.create_ingestion_job(rows))


async def _conflict(emu: Emulator) -> BaseException:
    async with _client(emu) as c:
        await c.create_ingestion_job([IngestionJobRow(emu.case_ids[0], "a")], idempotency_key="k")
        rows = [IngestionJobRow(emu.case_ids[0], "b")]
        return await _raised(c.create_ingestion_job(rows, idempotency_key="k"))


async def _dropped(emu: Emulator) -> BaseException:
    await emu.add_fault(Fault("drop_after", count=1, endpoint=POST))
    async with _client(emu) as c:
        return await _raised(c.create_ingestion_job([IngestionJobRow(emu.case_ids[0], "d")]))


async def _timed_out(emu: Emulator) -> BaseException:
    await emu.add_fault(Fault("slow", count=1, delay=0.3 * SCALE, endpoint="GET /me"))
    async with _client(emu, timeout=Timeout(total=1.0, read=0.1)) as c:
        return await _raised(c.me())


async def _refused(_emu: Emulator) -> BaseException:
    with socket.socket() as sock:  # bound, never listening, held: no other process takes it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        async with _client(f"http://127.0.0.1:{port}") as c:
            return await _raised(c.me())


async def _undecodable(_emu: Emulator) -> BaseException:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\n[1,2"
    async with raw_http_server(answer) as url, _client(url) as c:
        return await _raised(c.me())


async def _malformed_http(_emu: Emulator) -> BaseException:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n{}"
    async with raw_http_server(answer) as url, _client(url) as c:
        return await _raised(c.me())


async def _invalid_rows(emu: Emulator) -> BaseException:
    async with _client(emu) as c:
        return await _raised(c.create_ingestion_job([{"caseId": "CASE-1", "description": ""}]))


async def _wait_timeout(emu: Emulator) -> BaseException:
    async with _client(emu) as c:
        rows = [IngestionJobRow(emu.case_ids[0], "w")] * 100
        job = await c.create_ingestion_job(rows)
        return await _raised(c.wait_for_ingestion_job(job.job_id, poll_interval=0.01, timeout=0.0))


@pytest.mark.parametrize(
    ("trigger", "kind"),
    [
        pytest.param(_rate_limited, RateLimitError, id="429"),
        pytest.param(_server_error, ServerError, id="502"),
        pytest.param(_not_found, NotFoundError, id="404"),
        pytest.param(_too_large, PayloadTooLargeError, id="413"),
        pytest.param(_conflict, IdempotencyConflictError, id="422-idempotency-conflict"),
        pytest.param(_dropped, RemoteProtocolError, id="connection-reset"),
        pytest.param(_timed_out, RequestTimeout, id="read-timeout"),
        pytest.param(_refused, ConnectError, id="connection-refused"),
        pytest.param(_undecodable, DecodeError, id="undecodable-body"),
        # aiohttp's error for a malformed response carries the request headers (XApiKey):
        # it must not stay reachable as __context__ (found by this suite, fixed in client.py)
        pytest.param(_malformed_http, RemoteProtocolError, id="malformed-http-response"),
        pytest.param(_invalid_rows, ValidationError, id="validation"),
        pytest.param(_wait_timeout, JobWaitTimeout, id="wait-timeout"),
    ],
)
async def test_exceptions_and_their_chains_never_show_the_key(
    trigger: Trigger, kind: type[BaseException]
) -> None:
    async with Emulator(config(max_body_bytes=20_000)) as emu:
        exc = await trigger(emu)
    assert isinstance(exc, kind), repr(exc)
    assert_no_key_in_exception(exc)


async def test_a_wrong_key_is_not_shown_either() -> None:
    async with (
        Emulator(config()) as emu,
        DebituraClient(WRONG_KEY, base_url=emu.url, max_retries=0) as c,
    ):
        exc = await _raised(c.me())
    assert isinstance(exc, AuthenticationError)
    assert_no_key_in_exception(exc, (WRONG_KEY,))


async def test_reprs_of_the_client_results_summary_and_journal_hold_no_key(
    tmp_path: Path,
) -> None:
    """A journaled run with every outcome (completed, with errors, failed, rejected,
    unresolved), then the repr of every object it leaves, and the journal's bytes."""
    async with Emulator(config(faults=(Fault("job_failed", count=1),))) as emu:
        source = tmp_path / "input.csv"
        source.write_text("not read: the identity of an input is all the journal needs\n")
        run = RunInfo(
            run_id="relsecrets",
            input=InputIdentity.of(source),
            base_url=emu.url,
            batch_size=10,
            validated_at=datetime.now(UTC),
        )
        store = JournalStore.create(tmp_path / "run.sqlite", run)
        journal = SqliteJournal(store)
        rows: list[Any] = [
            IngestionJobRow(emu.case_ids[i % 8], f"n{i}", external_ref=f"S{i}") for i in range(40)
        ]
        rows[3] = {"caseId": "nope", "description": "bad", "externalRef": "S3"}
        rows[35] = IngestionJobRow(emu.other_partner_case_ids[0], "foreign")
        results = []
        async with DebituraClient(KEY, base_url=emu.url, retry=fast_retry()) as client:
            async with client.ingest(
                rows,
                batch_size=10,
                journal=journal,
                run_id="relsecrets",
                polling=POLICY,
                max_jobs_in_flight=1,  # one job at a time: batch 0 fails, batch 1 vanishes
            ) as ingestion:
                async for result in ingestion:
                    results.append(result)
                    if result.outcome is JobOutcome.FAILED:
                        await emu.add_fault(Fault("job_vanish", count=1, after=0.0))
            objects: list[object] = [
                client,
                vars(client),
                client.stats,
                client.budget,
                ingestion,
                ingestion.options,
                ingestion.summary,
                *results,
                store,
                store.run,
                *store.batches(),
                journal,
                IngestPlan(path=source, api_key=KEY, base_url=emu.url),
            ]
        await journal.aclose()
        assert KEY in str(client._api_key.reveal())  # positive control: the client holds it
    outcomes = {r.outcome for r in results}
    assert outcomes == set(JobOutcome), outcomes
    for obj in objects:
        assert leaks(repr(obj)) == [], f"{type(obj).__name__}: {obj!r}"
        assert leaks(str(obj)) == []
    for result in results:
        if result.error is not None:
            assert_no_key_in_exception(result.error)
    raw = b"".join(
        p.read_bytes()
        for p in tmp_path.iterdir()  # noqa: ASYNC240 - a test reading its own files
        if p.name.startswith("run.sqlite")
    )
    assert b"relsecrets" in raw  # positive control: the search sees the journal's content
    assert leaks(raw.decode("latin-1")) == []


# -- http:// to a remote host ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://collectionpartner-api.debitura.com", True),
        ("http://0.0.0.0:8080", True),  # not loopback, though Linux routes it home
        ("http://10.1.2.3", True),
        ("http://[2001:db8::1]:8080", True),
        ("http://localhost.example.com", True),
        ("http://127.0.0.1.nip.io", True),
        ("http://user:pw@127.0.0.1:8080", True),  # credentials in the URL: never
        ("http://127.0.0.1:8080", False),
        ("http://127.8.9.10", False),
        ("http://[::1]:8080", False),
        ("http://localhost:8080", False),
        ("https://collectionpartner-api.debitura.com", False),
    ],
)
def test_plain_http_to_a_remote_host_is_refused(url: str, refused: bool) -> None:
    if refused:
        with pytest.raises(ConfigurationError) as info:
            DebituraClient(KEY, base_url=url)
        assert leaks(str(info.value)) == []
    else:
        DebituraClient(KEY, base_url=url)


async def test_http_to_a_remote_host_needs_the_explicit_flag_client_and_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``http://0.0.0.0:PORT`` is not a loopback name, yet on Linux it reaches the emulator on
    127.0.0.1: the refusal is the only thing standing between the key and the wire."""
    async with Emulator(config()) as emu:
        remote = f"http://0.0.0.0:{emu.port}"
        with pytest.raises(ConfigurationError, match="refusing plain http://"):
            DebituraClient(KEY, base_url=remote)
        monkeypatch.setenv("DEBITURA_BASE_URL", remote)
        with pytest.raises(ConfigurationError, match="refusing plain http://"):
            DebituraClient(KEY)
        monkeypatch.delenv("DEBITURA_BASE_URL")
        sample = write_crm_csv(tmp_path / "in.csv", emu.case_ids, 5)
        env = cli_env(DEBITURA_API_KEY=KEY)
        refused = [
            await run_cli("whoami", "--base-url", remote, env=env),
            await run_cli("status", str(uuid.uuid4()), "--base-url", remote, env=env),
            await run_cli("ingest", sample.path, *CRM_MAP, "--base-url", remote, env=env),
            await run_cli(
                "ingest",
                sample.path,
                *CRM_MAP,
                env=cli_env(DEBITURA_API_KEY=KEY, DEBITURA_BASE_URL=remote),
            ),
        ]
        assert (await emu.stats())["requests"] == {}  # nothing reached the server
        allowed = await run_cli(
            "ingest", sample.path, *CRM_MAP, "--base-url", remote, "--allow-insecure-http",
            "--time-scale", str(SCALE), "--no-journal", env=env,
        )  # fmt: skip
        async with DebituraClient(KEY, base_url=remote, allow_insecure_http=True) as client:
            partner = await client.me()
        notes = await emu.note_count()
    for result in refused:
        assert result.code == 2, result
        assert "refusing plain http://" in result.err
        assert "'0.0.0.0'" in result.err
    assert allowed.code == 0, allowed
    assert notes == 5
    assert partner.company_name is not None


# -- TLS -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command line."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a self-signed certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    command = (
        f"{openssl} req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        f" -keyout {key} -out {cert} -days 2 -subj /CN=127.0.0.1"
        " -addext subjectAltName=IP:127.0.0.1"
    )
    subprocess.run(
        command.split(),
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@contextlib.asynccontextmanager
async def tls_server(cert: Path, key: Path) -> AsyncIterator[tuple[str, list[str]]]:
    """An HTTPS server on 127.0.0.1 answering ``GET /me``; yields its URL and the requests it
    handled."""
    handled: list[str] = []

    async def me(request: web.Request) -> web.Response:
        handled.append(f"{request.method} {request.path}")
        return web.json_response({"id": str(uuid.uuid4()), "companyName": "TLS Partner"})

    async def job(request: web.Request) -> web.Response:
        handled.append(f"{request.method} {request.path}")
        return web.json_response({"jobId": str(uuid.uuid4()), "rowsQueued": 1}, status=202)

    app = web.Application()
    app.router.add_get("/me", me)
    app.router.add_post("/ingestion-jobs", job)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}", handled
    finally:
        await runner.cleanup()


async def test_tls_is_verified_by_default_and_a_tls_failure_is_not_retried(
    self_signed: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, key = self_signed
    async with tls_server(cert, key) as (url, handled):
        async with DebituraClient(KEY, base_url=url, retry=fast_retry(5)) as client:
            with pytest.raises(TLSError) as info:
                await client.me()
            assert (client.stats.requests, client.stats.retries) == (1, 0)
            rows = [IngestionJobRow(uuid.uuid4(), f"t{i}") for i in range(3)]
            summary = await client.ingest_all(rows, batch_size=1, polling=POLICY)
        assert_no_key_in_exception(info.value)
        assert handled == []  # the handshake failed: not one request was served
        assert (summary.rows_unresolved, summary.retries, summary.posts) == (3, 0, 3)

        sample = write_crm_csv(tmp_path / "in.csv", [uuid.uuid4()], 3)
        env = cli_env(DEBITURA_API_KEY=KEY, DEBITURA_BASE_URL=url)
        whoami = await run_cli("whoami", env=env)
        ingest = await run_cli("ingest", sample.path, *CRM_MAP, env=env)
        assert handled == []
        # control: the same server is fine for a client that trusts its certificate
        trusted = ssl.create_default_context(cafile=str(cert))
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusted)) as session,
            DebituraClient(KEY, base_url=url, session=session) as client,
        ):
            assert (await client.me()).company_name == "TLS Partner"
        assert handled == ["GET /me"]
    for result in (whoami, ingest):
        assert result.code == 4, result
        assert "TLS failure" in result.err
        assert leaks(result.out + result.err) == []
    assert not (tmp_path / "in.csv.journal.sqlite").exists()  # refused before recording anything


# -- the emulator binds loopback -------------------------------------------------------------------


async def test_the_emulator_binds_loopback_by_default() -> None:
    async with Emulator() as emu:
        assert emu.url.startswith("http://127.0.0.1:")
        runner = emu._runner
        assert runner is not None
        assert [a[0] for a in runner.addresses] == ["127.0.0.1"]


@pytest.mark.parametrize(
    "host",
    ["0.0.0.0", "::", "192.0.2.7", "10.0.0.1", "example.com", "localhost.example.com"],  # noqa: S104
)
async def test_the_emulator_refuses_a_non_loopback_address_without_the_flag(host: str) -> None:
    with pytest.raises(ValueError, match="non-loopback"):
        Emulator(host=host)
    with pytest.raises(ValueError, match="non-loopback"):
        EmulatorProcess(host=host)


async def test_the_cli_emulator_refuses_0000_without_the_flag_and_binds_it_with() -> None:
    refused = await run_cli("emulator", "--host", "0.0.0.0", "--port", "0", "--json", limit=30)  # noqa: S104
    assert refused.code == 2, refused
    assert "non-loopback" in refused.err
    assert refused.out == ""
    async with Emulator(host="0.0.0.0", allow_non_loopback=True) as emu:  # noqa: S104
        assert emu.url.startswith("http://0.0.0.0:")


async def test_the_embedded_emulator_of_ingest_binds_loopback(tmp_path: Path) -> None:
    sample = write_crm_csv(tmp_path / "in.csv", [uuid.uuid4()], 2)
    result = await run_cli(
        "ingest", sample.path, *CRM_MAP, "--emulator", "--time-scale", "500", env=cli_env()
    )
    assert "embedded emulator at http://127.0.0.1:" in result.err, result
