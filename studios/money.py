"""Dollars as JSON numbers outside, integer micro-dollars (1e-6 USD) inside, converted exactly."""

from decimal import Decimal

MICROS_PER_USD = 1_000_000
# The largest amount a plan takes: 15 significant digits with the 6 decimals, so that every amount
# written back as a JSON number (a double) reads exactly as it was given.
MAX_USD = 999_999_999


class MoneyError(ValueError):
    """Why a value is not an amount of dollars; the message is for the person who sent it."""


def usd_to_micros(value: object) -> int:
    """A JSON number of dollars (at most 6 decimals, 0 ≤ value ≤ MAX_USD + 0.999999) as micro-dollars.

    Floats go through their shortest decimal form (`str`), so 0.000001 is 1 and 12345.678901 is
    12345678901, never a binary neighbour. Booleans, strings and non-finite numbers are refused.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise MoneyError("must be a number of US dollars, such as 12.5")
    amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    if not amount.is_finite():
        raise MoneyError("must be a finite number of US dollars")
    if amount < 0:
        raise MoneyError("must be 0 or more US dollars")
    if amount >= MAX_USD + 1:
        raise MoneyError(f"must be less than {MAX_USD + 1:,} US dollars")
    micros = amount * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise MoneyError("has more than 6 decimals; City counts money in millionths of a dollar")
    return int(micros)


def micros_to_usd(micros: int | None) -> float | int | None:
    """Micro-dollars as a JSON number of dollars: an int when whole, else the double that prints as the exact amount."""
    if micros is None:
        return None
    whole, rest = divmod(micros, MICROS_PER_USD)
    return whole if rest == 0 else micros / MICROS_PER_USD


def micros_to_decimal(micros: int | None) -> Decimal | None:
    """For forms and pages: the exact amount of dollars."""
    return None if micros is None else Decimal(micros).scaleb(-6)


def picousd_to_decimal(cost: int) -> Decimal:
    """A usage cost in 1e-12 USD as dollars, exact (the spend shown on the admin pages)."""
    return Decimal(cost).scaleb(-12)
