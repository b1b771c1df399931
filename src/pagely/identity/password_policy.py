"""Password rules: 8 to 128 characters, not one of the most common passwords, nothing else
(no composition rules)."""

from __future__ import annotations

from functools import lru_cache

MIN_LENGTH = 8
MAX_LENGTH = 128
COMMON_COUNT = 10_000


@lru_cache(maxsize=1)
def _common() -> frozenset[str]:
    # zxcvbn ships a frequency-ranked list of leaked passwords; the top 10,000 are refused.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

    return frozenset(FREQUENCY_LISTS["passwords"][:COMMON_COUNT])


def password_problem(password: str) -> str | None:
    """Why this password is refused, or None."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return f"must be {MIN_LENGTH} to {MAX_LENGTH} characters"
    if password.lower() in _common():
        return "is one of the most common passwords; choose another"
    return None
