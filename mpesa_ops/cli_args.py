"""Argument types shared by the commands: each turns the text of a flag into its value
or raises argparse's error, which argparse prints as a usage error (exit status 2)."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Callable


def whole_number(minimum: int) -> Callable[[str], int]:
    """A whole number of at least `minimum`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    parse.__name__ = "whole number"  # what argparse names in its messages
    return parse


positive_int = whole_number(1)
count = whole_number(0)


def seconds(text: str) -> float:
    """A number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def aware_time(text: str) -> dt.datetime:
    """An ISO 8601 time with its offset (a time without one would be ambiguous)."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time with its offset, got {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no offset: add one, e.g. +03:00 for Nairobi")
    return value
