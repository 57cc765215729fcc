"""Rule-generated pairs with a value-disjoint split: the compositional generalization check.

Numbers written in words by ``num2words`` ("one thousand, nine hundred and eighty-four" ->
"mille neuf cent quatre-vingt-quatre") and dates written by ``babel.dates`` in several CLDR formats
("Monday, March 5, 1984" -> "lundi 5 mars 1984"). The *values* are split, not the strings: a
number or a date of the test split never occurs in training, in any format, so a model can only
get it right by composing what it learned from other values.
"""

from __future__ import annotations

import datetime
import random
from typing import Any

SPLITS = ("train", "val", "test")


def split_values(values: list, val_fraction: float, test_fraction: float, seed: int) -> dict[str, list]:
    """Values shuffled by ``seed`` and cut into test, val and train (disjoint by construction)."""
    order = list(values)
    random.Random(seed).shuffle(order)
    n_test, n_val = round(len(order) * test_fraction), round(len(order) * val_fraction)
    return {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}


def number_pairs(values: list[int], target: str) -> list[dict[str, Any]]:
    from num2words import num2words

    return [{"source": num2words(n, lang="en"), "target": num2words(n, lang=target), "value": f"number:{n}"}
            for n in values]


def date_pairs(values: list[datetime.date], formats: list[str], target: str, seed: int) -> list[dict[str, Any]]:
    """One pair per date, in a format drawn by ``seed`` from ``formats`` (CLDR names: medium, long, full)."""
    from babel.dates import format_date

    rng = random.Random(seed)
    pairs = []
    for day in values:
        fmt = rng.choice(formats)
        pairs.append({"source": format_date(day, fmt, locale="en"), "target": format_date(day, fmt, locale=target),
                      "value": f"date:{day.isoformat()}"})
    return pairs


def generate(cfg: dict[str, Any], target: str, seed: int) -> dict[str, list[dict[str, Any]]]:
    """``{split: [{"source", "target", "value"}]}`` from ``cfg['numbers']`` and ``cfg['dates']``."""
    numbers = cfg["numbers"]
    number_splits = split_values(list(range(numbers["low"], numbers["high"] + 1)), cfg["val_fraction"],
                                 cfg["test_fraction"], seed)
    dates = cfg["dates"]
    first, last = datetime.date(dates["first_year"], 1, 1), datetime.date(dates["last_year"], 12, 31)
    every_day = [first + datetime.timedelta(days=i) for i in range((last - first).days + 1)]
    chosen = random.Random(seed + 1).sample(every_day, min(dates["count"], len(every_day)))
    date_splits = split_values(chosen, cfg["val_fraction"], cfg["test_fraction"], seed + 2)
    return {split: number_pairs(number_splits[split], target)
            + date_pairs(date_splits[split], list(dates["formats"]), target, seed + 3 + i)
            for i, split in enumerate(SPLITS)}
