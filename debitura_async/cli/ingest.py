"""``debitura-async ingest``: the thin shell that runs a planned ingestion.

Decisions are in ``_plan`` (pure); this module opens things in order, each closed by one
``AsyncExitStack``: the emulator (``--emulator``), the client, the journal, the input, the
report; then it drives the pipeline with a progress heartbeat and graceful stops, and prints the
summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import anyio
import attrs

from .._batching import new_run_id
from .._budget import RequestBudget, budget_from_url
from .._input import CsvReader, InputError, InputFormat, JsonlReader, detect_format, open_reader
from .._input_options import InputOptions
from .._input_stop import FailureWatch, UniformFailureError, row_check, watch_input
from .._journal_refs import JournalReferenceCache
from .._polling import PollPolicy
from ..client import API_KEY_ENV, DebituraClient
from ..errors import (
    APIStatusError,
    ConfigurationError,
    DebituraError,
    NotFoundError,
    TransportError,
)
from ..journal import InputIdentity, JournalStore, RunInfo, SqliteJournal
from ..references import MemoryReferenceCache, resolve_references
from ._common import (
    DEFAULT_EMULATOR_TIME_SCALE,
    DEMO_WORLD,
    EXIT_ACCOUNTING,
    EXIT_FATAL,
    EXIT_UNRESOLVED,
    PROG,
    CLIError,
    cli_words,
    examples_dir,
    fatal_message,
    fmt_wait,
)
from ._dryrun import run_dry
from ._plan import (
    IngestPlan,
    accounting_gap,
    check_conflicts,
    exit_code_for,
    journal_path_for,
    resolve_resume_settings,
    resume_input_options,
    settings_of,
)
from ._progress import Progress
from ._report import ReportWriter
from ._rerun import EarlierRun, RerunInput, load_earlier_run
from ._results import ResultSink
from ._session import check_collisions, create_journal, decide_resume, open_journal
from ._signals import GracefulStop
from ._strict import strict_check
from ._summary import Ending, Tally, print_summary, summary_dict, summary_json

if TYPE_CHECKING:
    from ..redis_budget import RedisBudget

__all__ = ["run_ingest"]


@attrs.define
class _Run:
    """What one ingest has opened so far (closed by the caller's exit stack)."""

    plan: IngestPlan
    err: TextIO
    stack: contextlib.AsyncExitStack
    client: DebituraClient | None = None
    polling: PollPolicy = attrs.field(factory=PollPolicy)
    journal_path: Path | None = None
    store: JournalStore | None = None
    run: RunInfo | None = None
    input_format: InputFormat = "csv"
    mapping: dict[str, str] = attrs.field(factory=dict)
    batch_size: int = 1000
    validated_at: datetime = attrs.field(factory=lambda: datetime.now(UTC))
    run_id: str = attrs.field(factory=new_run_id)
    reader: CsvReader | JsonlReader | None = None
    options: InputOptions = attrs.field(factory=InputOptions)
    earlier: EarlierRun | None = None

    @property
    def api(self) -> DebituraClient:
        if self.client is None:  # pragma: no cover - _connect runs first
            raise RuntimeError("not connected")
        return self.client

    @property
    def input(self) -> CsvReader | JsonlReader:
        if self.reader is None:  # pragma: no cover - _open_run runs first
            raise RuntimeError("no input")
        return self.reader

    def note(self, text: str) -> None:
        if not self.plan.quiet:
            print(f"{PROG}: note: {text}", file=self.err, flush=True)


async def run_ingest(plan: IngestPlan, *, out: TextIO, err: TextIO) -> int:
    """Run one ``ingest``; returns the exit code (raises :class:`CLIError` for usage errors)."""
    check_conflicts(plan)
    if not plan.from_stdin and not plan.path.is_file():
        raise CLIError(f"no such input file: {str(plan.path)!r}")
    if plan.report_path is not None:
        ReportWriter.format_of(plan.report_path)
    input_format = plan.input_format or detect_format(plan.path)
    journal_path = journal_path_for(plan)
    if not plan.from_stdin:
        check_collisions(input_path=plan.path, journal=journal_path, report=plan.report_path)
    earlier = None
    if plan.rerun_report is not None:
        rerun_report = plan.rerun_report
        earlier = await anyio.to_thread.run_sync(lambda: load_earlier_run(rerun_report))
    resume = False
    identity: InputIdentity | None = None
    if journal_path is not None:
        resume = await decide_resume(journal_path, resume=plan.resume)
        identity = await anyio.to_thread.run_sync(InputIdentity.of, plan.path)

    task = asyncio.current_task()

    def stop_before_sending(_: str) -> None:
        if task is not None:
            task.cancel()

    stopper = GracefulStop(err, on_stop=stop_before_sending)
    with stopper.installed():
        try:
            async with contextlib.AsyncExitStack() as stack:
                state = _Run(
                    plan=plan,
                    err=err,
                    stack=stack,
                    journal_path=journal_path,
                    input_format=input_format,
                    mapping=dict(plan.mapping),
                    batch_size=plan.batch_size or 1000,
                    options=plan.input_options,
                    earlier=earlier,
                )
                await _connect(state)
                await _open_run(state, identity=identity, resume=resume)
                if plan.dry_run:
                    return await run_dry(
                        plan,
                        state.api,
                        state.input,
                        state.mapping,
                        batch_size=state.batch_size,
                        now=state.validated_at,
                        out=out,
                        err=err,
                    )
                return await _drive(state, stopper, out=out)
        except asyncio.CancelledError:
            if stopper.reason is None or task is None:
                raise
            task.uncancel()
            raise CLIError(
                f"stopped by {stopper.reason} before any batch was sent", EXIT_UNRESOLVED
            ) from None


async def _start_emulator(state: _Run) -> tuple[str, str, float]:
    from ..emulator import Emulator, EmulatorConfig, World  # noqa: PLC0415 - only for --emulator

    plan = state.plan
    time_scale = plan.time_scale or DEFAULT_EMULATOR_TIME_SCALE
    world_path = plan.emulator_world
    if world_path is None:
        with contextlib.suppress(CLIError):
            world_path = examples_dir() / DEMO_WORLD
    try:
        world = World.from_file(world_path) if world_path is not None else None
    except (OSError, ValueError, TypeError) as exc:
        raise CLIError(f"--emulator-world {str(world_path)!r}: {exc}") from None
    emu = await state.stack.enter_async_context(
        Emulator(EmulatorConfig(time_scale=time_scale, world=world))
    )
    where = f"world {world_path}" if world_path is not None else "a generated world"
    state.note(f"embedded emulator at {emu.url} (time x{time_scale:g}, {where})")
    return emu.api_key, emu.url, time_scale


async def _connect(state: _Run) -> None:
    """The client (the API key and base URL as the client resolves them), and a key check."""
    plan = state.plan
    api_key, base_url, time_scale = plan.api_key, plan.base_url, plan.time_scale
    if plan.emulator:
        api_key, base_url, time_scale = await _start_emulator(state)
    if time_scale is not None:
        state.polling = PollPolicy().scaled(time_scale)
    try:
        budget = _budget(plan.budget_url, api_key)
        client = (
            DebituraClient(
                api_key or None,
                base_url=base_url or None,
                allow_insecure_http=plan.allow_insecure_http,
            )
            if budget is None
            else DebituraClient(
                api_key or None,
                base_url=base_url or None,
                allow_insecure_http=plan.allow_insecure_http,
                budget=budget,
            )
        )
    except ConfigurationError as exc:
        raise CLIError(cli_words(str(exc))) from None
    if budget is not None:
        state.stack.push_async_callback(budget.aclose)
    state.client = await state.stack.enter_async_context(client)
    watch = asyncio.create_task(_say_retries(state, client))
    try:  # fail fast on a bad key, before anything is recorded
        await client.me()
    except NotFoundError:
        pass  # GET /me is not available here; go on
    except (APIStatusError, TransportError) as exc:
        message, code = fatal_message(exc)
        raise CLIError(message, code) from None
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch


def _budget(url: str | None, api_key: str | None) -> RequestBudget | RedisBudget | None:
    """``--budget URL`` / ``$DEBITURA_BUDGET_URL`` (None: the client's own in-process budget)."""
    if url is None:
        return None
    key = api_key or os.environ.get(API_KEY_ENV) or ""
    if not key:
        raise ConfigurationError(f"--budget needs the API key (--api-key or ${API_KEY_ENV})")
    try:
        return budget_from_url(url, api_key=key)
    except ConfigurationError as exc:
        raise ConfigurationError(f"--budget: {exc}") from None


async def _say_retries(state: _Run, client: DebituraClient) -> None:
    """While the key is checked (before any progress display): say each retry, so that a
    server that is down does not make the CLI wait in silence."""
    said = None
    while True:
        await asyncio.sleep(min(state.plan.progress_interval, 1.0))
        wait = client.retry_wait()
        if wait is not None and wait.retry != said:
            said = wait.retry
            what = "server unreachable" if wait.reason == "unreachable" else wait.reason
            state.note(
                f"checking the API key: {what}, retry {wait.retry}/{wait.max_retries}"
                f" in {fmt_wait(wait.resumes_in)}"
            )


async def _open_run(state: _Run, *, identity: InputIdentity | None, resume: bool) -> None:
    """Resume the journal's run or start one; open the input; ``--strict``."""
    plan, client, journal_path = state.plan, state.api, state.journal_path
    if journal_path is not None and resume and identity is not None:
        store, notes = await open_journal(journal_path, identity=identity, base_url=client.base_url)
        state.stack.push_async_callback(anyio.to_thread.run_sync, store.close)
        state.store, state.run = store, store.run
        state.input_format, state.mapping, state.batch_size = resolve_resume_settings(
            plan, store.run
        )
        state.options = resume_input_options(plan, store.run)
        if store.run.settings.get("rerun") != _rerun_setting(state.earlier):
            raise CLIError(
                "--resume: pass the same --rerun-rejected REPORT as the run in the journal (its"
                " rows are numbered among the lines taken)"
            )
        state.validated_at, state.run_id = store.run.validated_at, store.run.run_id
        for note in notes:
            state.note(note)
    source = "-" if plan.from_stdin else plan.path
    try:  # may scan the whole file for its encoding: off the event loop
        state.reader = await anyio.to_thread.run_sync(
            lambda: open_reader(source, state.input_format, state.mapping, state.options)
        )
    except InputError as exc:
        raise CLIError(str(exc)) from None
    state.stack.callback(state.reader.close)
    ignored = getattr(state.reader, "ignored_columns", ())
    if ignored:
        state.note(f"columns not sent: {', '.join(ignored)}")
    if plan.strict:
        await strict_check(
            state.plan,
            state.input_format,
            state.mapping,
            client,
            state.err,
            now=state.validated_at,
            options=state.options,
        )
    await _record_start(state, identity)


async def _record_start(state: _Run, identity: InputIdentity | None) -> None:
    client = state.api
    if state.journal_path is not None and state.store is None and identity is not None:
        run = RunInfo(
            run_id=state.run_id,
            input=identity,
            base_url=client.base_url,
            batch_size=state.batch_size,
            settings={
                **settings_of(state.input_format, state.mapping, state.batch_size, state.options),
                "rerun": _rerun_setting(state.earlier),
            },
            validated_at=state.validated_at,
        )
        state.store = await create_journal(state.journal_path, run)
        state.stack.push_async_callback(anyio.to_thread.run_sync, state.store.close)
        state.run = run
    elif state.store is not None:
        await anyio.to_thread.run_sync(state.store.begin_attempt)
        state.run = state.store.run
        if state.run.completed_at is not None:
            state.note(
                f"this journal's run completed on {state.run.completed_at:%Y-%m-%d %H:%M UTC};"
                " replaying it"
            )


def _rerun_setting(earlier: EarlierRun | None) -> str | None:
    """The lines a re-run takes, as a digest kept in the journal's settings."""
    if earlier is None:
        return None
    text = ",".join(str(n) for n in sorted(earlier.lines))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _print_whole(state: _Run, summary: Any, rerun: RerunInput, out: TextIO) -> None:
    earlier = state.earlier
    if earlier is None:
        return
    stored = earlier.succeeded + summary.rows_succeeded
    print(
        f"whole migration: {stored:,} rows stored ({earlier.succeeded:,} earlier +"
        f" {summary.rows_succeeded:,} now); {len(rerun.kept):,} earlier-rejected lines sent"
        f" again, {summary.rows_rejected:,} still rejected, {summary.rows_failed:,} failed;"
        f" {earlier.failed_in_jobs:,} rows that failed inside earlier jobs are not identified"
        f" by the API and were not sent again; {rerun.skipped:,} lines skipped",
        file=state.err if state.plan.json else out,
    )


async def _heartbeat(source: Any, progress: Progress, interval: float) -> None:
    """Refresh the display at the interval whatever happens (no result for minutes)."""
    while True:
        await asyncio.sleep(interval)
        progress.update(source.progress())


class _CountingMemoryCache(MemoryReferenceCache):
    hits = 0


def _reference_cache(
    state: _Run, journal: SqliteJournal | None
) -> JournalReferenceCache | _CountingMemoryCache | None:
    """Where resolved case references are kept (the journal, so a resume does not resolve them
    again), or None when the input cannot carry references."""
    reader = state.input
    if state.input_format != "jsonl" and "caseReference" not in getattr(reader, "columns", {}):
        return None
    return JournalReferenceCache(journal) if journal is not None else _CountingMemoryCache()


async def _drive(state: _Run, stopper: GracefulStop, *, out: TextIO) -> int:
    plan, client, reader = state.plan, state.api, state.input
    rerun = RerunInput(reader, state.earlier.lines) if state.earlier is not None else None
    lines: Any = reader.lines if rerun is None else rerun.lines
    store = state.store
    journal = SqliteJournal(store, lines=lines.span) if store is not None else None
    report = ReportWriter(plan.report_path) if plan.report_path is not None else None
    if report is not None:
        state.stack.callback(report.discard)  # a crash publishes no half report
    progress = Progress(
        "off" if plan.quiet else plan.progress,
        size=reader.size,
        bytes_read=lambda: reader.bytes_read,
        err=state.err,
        interval=plan.progress_interval,
    )
    tally = Tally()
    sink = ResultSink(
        span=lines.span,
        mapping=state.mapping,
        report=report,
        progress=progress,
        tally=tally,
        show_rejected=0 if plan.quiet else plan.show_rejected,
    )

    def on_progress(p: Any) -> None:
        tally.last_progress = p
        progress.update(p)

    rows = watch_input(
        reader if rerun is None else rerun,
        row_check(now=state.validated_at, skew=client.clock_skew),
        FailureWatch(columns=reader.source_columns),
        lines,
    )
    cache = _reference_cache(state, journal)
    source: Any = rows if cache is None else resolve_references(client, rows, cache=cache)
    ingestion = client.ingest(
        source,
        batch_size=state.batch_size,
        max_jobs_in_flight=plan.concurrency,
        max_concurrent_submits=max(1, plan.concurrency // 2),
        deadline=plan.deadline,
        run_id=state.run_id,
        validated_at=state.validated_at,
        journal=journal,
        polling=state.polling,
        on_progress=on_progress,
    )
    beat_every = (
        min(plan.progress_interval, 1.0) if progress.mode == "bar" else plan.progress_interval
    )
    fatal: DebituraError | None = None
    try:
        async with ingestion as results:
            stopper.on_stop = ingestion.stop
            beat = asyncio.create_task(_heartbeat(ingestion, progress, beat_every))
            try:
                async for result in results:
                    sink(result)
            finally:
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat
    except DebituraError as exc:
        fatal = exc
    except UniformFailureError as exc:
        progress.close(tally.last_progress)
        raise CLIError(str(exc)) from None
    finally:
        progress.close(tally.last_progress)
    if cache is not None and not plan.quiet and (cache.lookups or cache.hits):
        state.note(
            f"case references: {cache.lookups:,} looked up"
            + (f", {cache.hits:,} taken from the journal" if cache.hits else "")
        )
    early = ingestion.stop_reason
    if stopper.reason is None and early is not None and early.startswith("rate limited"):
        print(f"{PROG}: stopped, {early} (longer than it waits by itself)", file=state.err)
    code = await _finish(
        state,
        summary=ingestion.summary,
        tally=tally,
        progress=progress,
        report=report,
        fatal=fatal,
        stopped=stopper.reason,
        out=out,
    )
    if rerun is not None:
        _print_whole(state, ingestion.summary, rerun, out)
    return code


async def _finish(
    state: _Run,
    *,
    summary: Any,
    tally: Tally,
    progress: Progress,
    report: ReportWriter | None,
    fatal: DebituraError | None,
    stopped: str | None,
    out: TextIO,
) -> int:
    plan, err, reader = state.plan, state.err, state.input
    gap = accounting_gap(summary)
    code = exit_code_for(summary)
    if fatal is not None and code != EXIT_ACCOUNTING:
        message, _ = fatal_message(fatal)
        progress.message(f"{PROG}: error: {message}")
        code = EXIT_FATAL
    elif stopped is not None and code != EXIT_ACCOUNTING:
        code = EXIT_UNRESOLVED
    if gap:
        print(
            f"{PROG}: error: the counts do not add up: {summary.rows_read:,} rows read, but"
            f" succeeded + failed + rejected + unresolved = {summary.rows_read - gap:,}"
            f" ({gap:+,}); the outcome of every row is not known: check the report and run again"
            " with --resume",
            file=err,
        )
    hidden = tally.rejected_lines - tally.rejected_shown
    if hidden > 0 and not plan.quiet:
        where = f"see {report.path}" if report is not None else "pass --report PATH for all"
        print(f"{PROG}: … and {hidden:,} more rejected lines ({where})", file=err)
    complete = fatal is None and stopped is None and not summary.rows_unresolved and not gap
    if report is not None:
        if not complete:
            _write_partial_record(report, summary, stopped=stopped)
        report.close()
    if state.store is not None and complete:
        await anyio.to_thread.run_sync(state.store.mark_complete, summary_dict(summary))
    if code == EXIT_UNRESOLVED and summary.rows_unresolved:
        hint = (
            f"run the same command with --resume (journal {state.journal_path})"
            if state.journal_path is not None
            else "no journal was kept, so a rerun sends everything again"
        )
        print(
            f"{PROG}: {summary.rows_unresolved:,} rows have no known outcome yet: {hint}", file=err
        )
    lines_read = reader.lines.last_line(len(reader.lines) - 1) if len(reader.lines) else 0
    end = Ending(
        summary=summary,
        code=code,
        lines_read=lines_read,
        stopped=stopped,
        run=state.run,
        journal_path=state.journal_path,
        report_path=None if report is None else report.path,
        report_records=0 if report is None else report.records,
    )
    if plan.json:
        print_summary(err, plan, end, tally)
        print(summary_json(plan, end, tally), file=out, flush=True)
    else:
        print_summary(out, plan, end, tally)
    return code


def _write_partial_record(report: ReportWriter, summary: Any, *, stopped: str | None) -> None:
    """The last record of a partial report: ``record=run, outcome=partial``."""
    if stopped is not None:
        detail = f"stopped by {stopped}: resume with --resume"
    else:
        detail = f"{summary.rows_unresolved:,} rows have no known outcome: resume with --resume"
    report.write(
        {
            "record": "run",
            "rows": summary.rows_read,
            "outcome": "partial",
            "succeeded": summary.rows_succeeded,
            "failed": summary.rows_failed,
            "detail": detail,
        }
    )
