"""``debitura-async whoami``: check an API key (GET /me)."""

from __future__ import annotations

import argparse
from typing import TextIO

import orjson

from ..errors import DebituraError
from ._common import EXIT_OK, CLIError, fatal_message
from .status import client_from_args

__all__ = ["run_whoami"]


async def run_whoami(args: argparse.Namespace, out: TextIO) -> int:
    async with client_from_args(args) as client:
        try:
            partner = await client.me()
        except DebituraError as exc:
            message, code = fatal_message(exc)
            raise CLIError(message, code) from None
        base_url = client.base_url
    if args.json:
        data = {
            "id": str(partner.id),
            "companyName": partner.company_name,
            "country": partner.country,
            "baseUrl": base_url,
        }
        print(orjson.dumps(data).decode(), file=out)
    else:
        print(f"partner  {partner.company_name or '(no name)'}", file=out)
        print(f"id       {partner.id}", file=out)
        if partner.country:
            print(f"country  {partner.country}", file=out)
        print(f"api      {base_url}", file=out)
    return EXIT_OK
