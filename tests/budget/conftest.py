"""Fixtures for the budget tests: a real redis-server per test, and budgets on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._redis_server import RedisServer


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server
