"""Issued credentials per (user, set), served until their renewal point.

A set that expires is fresh until :data:`~.model.RENEW_FRACTION` of its lifetime has passed; one
that does not (a Secret's values, a template) for ``max_age`` seconds, so a changed source is
picked up. Entitlement is checked before the cache is asked: a cached value is never a grant."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .model import RENEW_FRACTION, Issued


class IssueCache:
    def __init__(self, now: Callable[[], float], *, max_age: float = 300.0,
                 fraction: float = RENEW_FRACTION):  # fmt: skip
        self.now, self.max_age, self.fraction = now, max_age, fraction
        self._issued: dict[tuple[str, str], Issued] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def fresh(self, issued: Issued) -> bool:
        renew_at = issued.renew_at(self.fraction)
        if renew_at is None:
            renew_at = issued.issued_at + self.max_age
        return self.now() < renew_at

    def get(self, user: str, set_name: str) -> Issued | None:
        issued = self._issued.get((user, set_name))
        if issued is not None and not self.fresh(issued):
            del self._issued[(user, set_name)]
            return None
        return issued

    def put(self, user: str, set_name: str, issued: Issued) -> None:
        self._issued[(user, set_name)] = issued

    def drop(self, user: str, set_name: str) -> None:
        self._issued.pop((user, set_name), None)

    def lock(self, user: str, set_name: str) -> asyncio.Lock:
        """One issuance per (user, set) at a time: concurrent requests share its result."""
        return self._locks.setdefault((user, set_name), asyncio.Lock())
