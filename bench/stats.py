"""Medians and spread of repeated measurements."""

import statistics
from typing import TypedDict


class Summary(TypedDict):
    median: float
    min: float
    max: float
    n: int
    values: list[float]


def summarize(values: list[float]) -> Summary:
    if not values:
        raise ValueError("nothing was measured")
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "values": values,
    }
