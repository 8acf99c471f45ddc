"""A small in-memory stand-in for the Redis commands the stats store uses, so fast tests need no Redis (as
``make test-fast`` promises). Real tests use the real Redis; ``tests/monitoring/test_monitoring_real.py`` runs the
same store against it."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kvmweb.monitoring.collector import RELEASE_SCRIPT, RENEW_SCRIPT


class FakeRedis:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.data: dict[str, bytes] = {}
        self.expires: dict[str, float] = {}
        self.clock = clock
        self.commands = 0

    # -- keys ------------------------------------------------------------------------------------------
    def _live(self, key: str) -> bool:
        until = self.expires.get(key)
        if until is not None and self.clock() >= until:
            self.data.pop(key, None)
            self.expires.pop(key, None)
        return key in self.data

    def get(self, key: str) -> bytes | None:
        self.commands += 1
        return self.data[key] if self._live(key) else None

    def mget(self, keys: list[str]) -> list[bytes | None]:
        self.commands += 1
        return [self.data[k] if self._live(k) else None for k in keys]

    def set(self, key: str, value: Any, *, nx: bool = False, px: int | None = None) -> bool | None:
        self.commands += 1
        if nx and self._live(key):
            return None
        self.data[key] = value if isinstance(value, bytes) else str(value).encode()
        self.expires.pop(key, None)
        if px is not None:
            self.expires[key] = self.clock() + px / 1000
        return True

    def delete(self, *keys: str) -> int:
        self.commands += 1
        n = 0
        for key in keys:
            n += self._live(key)
            self.data.pop(key, None)
            self.expires.pop(key, None)
        return n

    def expire(self, key: str, seconds: int) -> bool:
        self.commands += 1
        if not self._live(key):
            return False
        self.expires[key] = self.clock() + seconds
        return True

    def pexpire(self, key: str, ms: int) -> bool:
        return self.expire(key, ms / 1000)  # type: ignore[arg-type]

    def ttl(self, key: str) -> float:
        return self.expires[key] - self.clock() if self._live(key) and key in self.expires else -1

    def strlen(self, key: str) -> int:
        self.commands += 1
        return len(self.data[key]) if self._live(key) else 0

    def keys(self, pattern: str = "*") -> list[str]:
        assert pattern.endswith("*")
        return [k for k in list(self.data) if k.startswith(pattern[:-1]) and self._live(k)]

    # -- strings as byte arrays ----------------------------------------------------------------------
    def getrange(self, key: str, start: int, end: int) -> bytes:
        self.commands += 1
        return self.data[key][start:end + 1] if self._live(key) else b""

    def setrange(self, key: str, offset: int, value: bytes) -> int:
        self.commands += 1
        old = self.data[key] if self._live(key) else b""
        if len(old) < offset:
            old = old + b"\0" * (offset - len(old))
        self.data[key] = old[:offset] + value + old[offset + len(value):]
        return len(self.data[key])

    # -- the lease's two scripts ------------------------------------------------------------------------
    def eval(self, script: str, numkeys: int, key: str, token: str, *args: Any) -> int:
        self.commands += 1
        held = self.data.get(key) if self._live(key) else None
        if held != token.encode():
            return 0
        if script == RENEW_SCRIPT:
            self.expires[key] = self.clock() + int(args[0]) / 1000
            return 1
        if script == RELEASE_SCRIPT:
            return self.delete(key)
        raise AssertionError(f"unknown script {script!r}")

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)


class FakePipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.queued: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Callable[..., FakePipeline]:
        def queue(*args: Any, **kwargs: Any) -> FakePipeline:
            self.queued.append((name, args, kwargs))
            return self
        return queue

    def execute(self) -> list[Any]:
        out = [getattr(self.redis, name)(*args, **kwargs) for name, args, kwargs in self.queued]
        self.queued = []
        return out
