"""Shared pytest configuration.

Async tests run on asyncio through anyio's pytest plugin (``@pytest.mark.anyio``);
anyio is already a runtime dependency, so no extra plugin is needed.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
