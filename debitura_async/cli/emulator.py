"""``debitura-async emulator``: the offline Debitura (its options and logging are its own)."""

from __future__ import annotations

import argparse

__all__ = ["run_emulator"]


def run_emulator(args: argparse.Namespace) -> int:
    from ..emulator import cli as emulator_cli  # noqa: PLC0415 - heavy; only for this command

    return emulator_cli.run(args)
