"""ISBN-10 / ISBN-13 parsing and check digits."""

from __future__ import annotations


def isbn13_check_digit(first12: str) -> str:
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


def isbn10_check_digit(first9: str) -> str:
    total = sum(int(d) * (10 - i) for i, d in enumerate(first9))
    digit = (11 - total % 11) % 11
    return "X" if digit == 10 else str(digit)


class InvalidISBN(ValueError):
    pass


def parse_isbn(raw: str) -> tuple[str, str | None]:
    """ISBN-10 or ISBN-13 (hyphens and spaces allowed) to `(isbn13, isbn10 or None)`.
    Raises InvalidISBN with a reason a person can act on."""
    digits = raw.replace("-", "").replace(" ", "").upper()
    if len(digits) == 10:
        body, check = digits[:9], digits[9]
        if not body.isdigit() or not (check.isdigit() or check == "X"):
            raise InvalidISBN("an ISBN-10 is nine digits and a check digit (0-9 or X)")
        if isbn10_check_digit(body) != check:
            raise InvalidISBN("the ISBN-10 check digit is wrong")
        first12 = "978" + body
        return first12 + isbn13_check_digit(first12), digits
    if len(digits) == 13:
        if not digits.isdigit():
            raise InvalidISBN("an ISBN-13 has only digits")
        if not digits.startswith(("978", "979")):
            raise InvalidISBN("an ISBN-13 starts with 978 or 979")
        if isbn13_check_digit(digits[:12]) != digits[12]:
            raise InvalidISBN("the ISBN-13 check digit is wrong")
        isbn10 = None
        if digits.startswith("978"):
            isbn10 = digits[3:12] + isbn10_check_digit(digits[3:12])
        return digits, isbn10
    raise InvalidISBN("an ISBN has 10 or 13 digits")
