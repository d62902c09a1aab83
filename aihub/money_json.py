"""Costs (integers of 1e-12 USD) as exact JSON numbers of dollars, for the API's answers.

A double cannot hold every amount of 12 decimals (0.000000000001 × 3 is not 3e-12 as a float), so
the number is written from its exact decimal text: `orjson.Fragment` puts that text into the
answer as it is. A JSON reader that parses numbers as decimals (Python's `json` with
`parse_float=Decimal`) gets the exact amount; one that parses doubles gets the nearest double.
"""

from decimal import Decimal

import orjson

from studios.money import picousd_to_decimal


def usd_number(cost: int) -> orjson.Fragment:
    """`cost` (1e-12 USD) as a JSON number of dollars with no exponent and no trailing zeros: 280000000000 → 0.28."""
    return orjson.Fragment(usd_text(cost).encode())


def usd_text(cost: int) -> str:
    """The exact decimal text of `cost` in dollars: "0.28", "3", "0.000000000001"."""
    amount = picousd_to_decimal(cost).normalize()
    if amount == 0:
        return "0"
    return format(amount, "f")


def usd_decimal(cost: int) -> Decimal:
    """`cost` (1e-12 USD) as exact dollars, for CSV cells and pages."""
    return picousd_to_decimal(cost)
