"""The ``debitura-async`` command: ingest CSV/JSONL exports, check jobs, run the emulator, demo.

Commands::

    debitura-async ingest PATH [options]   stream a CSV/JSONL export into ingestion jobs
    debitura-async status JOB_ID           one job's status (GET /ingestion-jobs/{id})
    debitura-async whoami                  the partner behind the API key (GET /me)
    debitura-async emulator [options]      the offline Debitura emulator
    debitura-async demo                    ingest the bundled sample CRM export into an emulator

Exit codes (every command)::

    0  all rows succeeded (status/whoami: the call succeeded)
    1  some rows failed at the server or were rejected (bad lines, invalid rows);
       status: the job was not found, or with --wait ended with errors / failed
    2  usage or input error: bad option, unreadable input, --strict found invalid rows, a journal
       that does not match (resume against another input or base URL), an existing journal
       without --resume, --resume on a journal that holds no run, --report on the input or the
       journal; nothing was sent
    3  unresolved jobs remain (deadline, Ctrl+C/SIGTERM/SIGHUP, server unreachable): run again
       with --resume; status --wait: --timeout passed before the job was terminal
    4  authentication failure (401/403) or another fatal error
    5  the counts do not add up (rows read != succeeded + failed + rejected + unresolved)

Errors are one line on stderr; ``-v`` adds debug logging and tracebacks.

The package's parts: ``_args`` (argparse), ``_plan`` (pure run planning), ``_session`` (journal
files), ``_progress``/``_eta`` (the display), ``_report``, ``_results``, ``_summary``,
``_signals``, ``_logging``, and one module per command (``ingest``, ``status``, ``whoami``,
``emulator``, ``demo``).
"""

from __future__ import annotations

from ._args import build_parser
from ._common import EXIT_CODES, CLIError
from ._main import main
from ._plan import IngestPlan, exit_code_for
from ._progress import Progress
from ._report import ReportWriter
from .ingest import run_ingest

__all__ = [
    "EXIT_CODES",
    "CLIError",
    "IngestPlan",
    "Progress",
    "ReportWriter",
    "build_parser",
    "exit_code_for",
    "main",
    "run_ingest",
]
