"""The bot process limits glibc's malloc arenas unless MALLOC_ARENA_MAX says otherwise (the RSS
it saves is measured by `bench/rebuild.py --scenario plan`)."""

from __future__ import annotations

import platform

import pytest

from bot.malloc import limit_arenas


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="mallopt(M_ARENA_MAX) is glibc's; this is not glibc"
)
def test_arenas_are_limited_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_arenas() is True


def test_an_explicit_malloc_arena_max_is_left_to_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_arenas() is False
