"""``debitura-async status JOB_ID``: one ingestion job's status, or ``--wait`` for its end."""

from __future__ import annotations

import argparse
import uuid
from typing import TextIO

import orjson

from ..client import DebituraClient
from ..errors import ConfigurationError, DebituraError, JobWaitTimeout, NotFoundError
from ..models import AsyncJobStatus, IngestionJobStatus
from ._common import (
    EXIT_OK,
    EXIT_ROWS_FAILED,
    EXIT_UNRESOLVED,
    PROG,
    CLIError,
    cli_words,
    fatal_message,
)

__all__ = ["client_from_args", "run_status", "status_name"]


def status_name(status: AsyncJobStatus) -> str:
    """The one name of a job status, the same in ``status``, ``status --json`` and reports
    (``queued``, ``in_progress``, ``completed``, ``completed_with_errors``, ``failed``)."""
    return status.name.lower()


def client_from_args(args: argparse.Namespace) -> DebituraClient:
    """A client from ``--api-key``/``--base-url``; the client itself falls back to
    ``$DEBITURA_API_KEY``/``$DEBITURA_BASE_URL`` (the one place they are resolved)."""
    try:
        return DebituraClient(
            args.api_key or None,
            base_url=args.base_url or None,
            allow_insecure_http=args.allow_insecure_http,
        )
    except ConfigurationError as exc:
        raise CLIError(cli_words(str(exc))) from None


def _print_status(
    job_id: uuid.UUID, status: IngestionJobStatus, *, as_json: bool, out: TextIO
) -> None:
    name = status_name(status.status)
    if as_json:
        payload = {
            "jobId": str(job_id),
            "status": int(status.status),
            "statusName": name,
            "terminal": status.status.is_terminal,
            "rowsTotal": status.rows_total,
            "rowsSucceeded": status.rows_succeeded,
            "rowsFailed": status.rows_failed,
        }
        print(orjson.dumps(payload).decode(), file=out)
        return
    print(f"job {job_id}: {name} ({int(status.status)})", file=out)
    print(
        f"  rows: {status.rows_total:,} total, {status.rows_succeeded:,} succeeded,"
        f" {status.rows_failed:,} failed",
        file=out,
    )


async def run_status(args: argparse.Namespace, out: TextIO) -> int:
    try:
        job_id = uuid.UUID(args.job_id)
    except ValueError:
        raise CLIError(f"JOB_ID {args.job_id!r} is not a UUID") from None
    async with client_from_args(args) as client:
        try:
            if args.wait:
                interval = 3.0 / (args.time_scale or 1.0)
                status = await client.wait_for_ingestion_job(
                    job_id, poll_interval=interval, timeout=args.timeout
                )
            else:
                status = await client.get_ingestion_job(job_id)
        except NotFoundError:
            print(f"{PROG}: job {job_id} not found (or not owned by this partner)", file=out)
            return EXIT_ROWS_FAILED
        except JobWaitTimeout as exc:
            raise CLIError(cli_words(str(exc)), EXIT_UNRESOLVED) from None
        except DebituraError as exc:
            message, code = fatal_message(exc)
            raise CLIError(message, code) from None
    _print_status(job_id, status, as_json=args.json, out=out)
    if args.wait and status.status is not AsyncJobStatus.COMPLETED:
        return EXIT_ROWS_FAILED
    return EXIT_OK
