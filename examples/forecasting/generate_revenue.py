#!/usr/bin/env python3
"""Seeded store × product-line revenue series, for Vigie's forecasting examples and bench.

Python 3 standard library only: it runs wherever the demo runs. The same
arguments give the same file, byte for byte, on any machine.

The data
--------
One series per (store, product line). For daily data, the revenue of series
s on day t is a product of positive factors, so it is never negative:

    revenue = level_s · break_s(t) · opening_s(t) · growth_s(t)
              · weekday_s(t) · yearly_s(t) · holiday_line(t)
              · promo_lift_s ^ promo_s(t) · after_promo_s(t) · noise_s(t)

- level: the store's size (log-normal, σ = 0.7) times the product line's
  typical daily revenue (from 40 for books to 2,500 for grocery) times a
  series factor (log-normal, σ = 0.4). Levels span about four orders of
  magnitude, from a few units to tens of thousands a day.
- break: about 8% of series have one structural break, a lasting level
  shift by a factor 0.45–0.8 or 1.3–2.0 (a competitor opens nearby, a
  refit, a new shelf layout) between 20% and 80% of `--periods`.
- opening: about 10% of stores (`--new-stores`) open late and have a short
  history, between `--min-length` periods (default two seasons plus
  `--horizon`: 2×7 + 28 = 42 days, or 2×52 + 8 = 112 weeks) and 60% of
  `--periods`. Their revenue ramps up from 60% to 100% of its level over
  their first 8 weeks.
- growth: exp(g · years), g ~ N(3%, 8%) a year.
- weekday: the product line's weekly profile (every line is busiest on
  Saturday, then Friday; electronics and garden stay busy on Sunday) times
  a small per-store perturbation, normalised to mean 1.
- yearly: 1 + a · cos(2π (day of year − peak) / 365.25), with the line's peak
  (summer for garden and beverages, early December for toys) and amplitude
  a ≈ 0.05–0.45 per series.
- holiday: a fixed calendar, the same for all stores: closed (revenue 0) on
  25 December and 1 January; 1–24 December ramp up (quadratically) to the
  line's Christmas peak (toys ×2.6, electronics ×2, grocery ×1.25), with
  food ×1.4 more on 23–24 December; 26–31 December ×1.2 for gift lines
  (apparel, electronics, toys, books), ×1.05 otherwise; 31 December ×1.8
  more for beverages; Good Friday ×1.15; Holy Saturday ×1.3 for food, ×1.1
  otherwise; Easter Sunday ×0.5 (short opening); Easter Monday ×0.7 (Easter
  by the Gregorian computus); Black Friday (the day after the fourth
  Thursday of November) ×2.5 for electronics, ×1.9 for apparel, ×1.3
  otherwise, then ×1.15 through Cyber Monday.
- promo: a 0/1 column known in advance (it is in the `--future` rows).
  Campaigns last 3–10 days (daily) or 1–2 weeks (weekly), about one every 6
  weeks per series; they lift revenue by a series factor of 1.1–1.7 (the
  line sets the typical lift) and pull demand forward: the 3 days after a
  campaign are at 92%.
- price: the series' shelf price index, known in advance like promo: 100 at
  the start, drifting up 3% a year, cut by 10–25% during a campaign.
- noise: multiplicative log-normal with AR(1) memory (φ = 0.3); σ from 0.04
  for the largest series to 0.3 for the smallest (small counts are noisier).

Weekly data (`--frequency W`) sums the same daily process over Monday–Sunday
weeks, dated by their Monday; campaigns then cover whole weeks. The weekly
profile cancels out and the yearly season (52 weeks) remains.

Output: `store,product_line,date,revenue,promo,price`, ordered by store,
product line, date; dates are ISO (`2024-01-31`); revenue has 2 decimals.
With `--future H`, each series gets H more rows after its last revenue, with
revenue empty and promo and price filled: the input of `vigie forecast
--data`. What this does not do: stock-outs, cannibalisation between lines,
permanent closures, missing days.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import random
import sys

LINES = [
    # name, typical daily revenue, weekday profile Mon..Sun, yearly peak day, typical
    # yearly amplitude, typical promo lift, Christmas ramp peak, Black Friday lift
    ("grocery", 2500.0, [0.90, 0.85, 0.90, 0.95, 1.10, 1.35, 0.95], 350, 0.08, 1.15, 1.25, 1.3),
    ("beverages", 900.0, [0.85, 0.80, 0.85, 0.95, 1.20, 1.40, 0.95], 190, 0.30, 1.30, 1.35, 1.3),
    ("household", 600.0, [0.95, 0.90, 0.95, 0.95, 1.05, 1.25, 0.95], 100, 0.10, 1.25, 1.20, 1.3),
    ("personal_care", 350.0, [0.95, 0.95, 0.95, 1.00, 1.05, 1.15, 0.95], 160, 0.08, 1.30, 1.40, 1.3),
    ("apparel", 450.0, [0.80, 0.80, 0.85, 0.95, 1.15, 1.45, 1.00], 95, 0.25, 1.45, 1.70, 1.9),
    ("electronics", 800.0, [0.80, 0.80, 0.85, 0.90, 1.10, 1.45, 1.10], 345, 0.20, 1.50, 2.00, 2.5),
    ("garden", 150.0, [0.80, 0.80, 0.85, 0.90, 1.05, 1.50, 1.10], 135, 0.45, 1.35, 1.10, 1.3),
    ("toys", 120.0, [0.80, 0.80, 0.85, 0.90, 1.10, 1.50, 1.05], 340, 0.35, 1.40, 2.60, 1.3),
    ("books", 40.0, [0.85, 0.85, 0.90, 0.95, 1.05, 1.30, 1.10], 350, 0.15, 1.20, 1.60, 1.3),
]
FOOD = {"grocery", "beverages"}
GIFTS = {"apparel", "electronics", "toys", "books"}

SEASON = {"D": 7, "W": 52}
DEFAULT_PERIODS = {"D": 730, "W": 156}
DEFAULT_HORIZON = {"D": 28, "W": 8}
RAMP_DAYS = 56
NOISE_PHI = 0.3


def easter(year: int) -> dt.date:
    """Easter Sunday (Gregorian; the anonymous computus of Meeus and Jones-Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def black_friday(year: int) -> dt.date:
    """The day after the fourth Thursday of November."""
    first = dt.date(year, 11, 1)
    first_thursday = first + dt.timedelta(days=(3 - first.weekday()) % 7)
    return first_thursday + dt.timedelta(days=22)


def holiday_factor(day: dt.date, line: tuple) -> float:
    """The calendar's multiplier for one product line on one day (0 when closed)."""
    name, christmas_peak, bf_lift = line[0], line[6], line[7]
    month, dom = day.month, day.day
    if (month, dom) in ((12, 25), (1, 1)):
        return 0.0
    factor = 1.0
    if month == 12 and dom <= 24:
        # Ramp up to Christmas Eve, steeper at the end.
        factor *= 1.0 + (christmas_peak - 1.0) * (dom / 24.0) ** 2
        if name in FOOD and dom in (23, 24):
            factor *= 1.4
    elif month == 12 and dom >= 26:
        factor *= 1.2 if name in GIFTS else 1.05
        if dom == 31 and name == "beverages":
            factor *= 1.8
    sunday = easter(day.year)
    offset = (day - sunday).days
    if offset == -2:
        factor *= 1.15
    elif offset == -1:
        factor *= 1.3 if name in FOOD else 1.1
    elif offset == 0:
        factor *= 0.5
    elif offset == 1:
        factor *= 0.7
    friday = black_friday(day.year)
    offset = (day - friday).days
    if offset == 0:
        factor *= bf_lift
    elif 1 <= offset <= 3:
        factor *= 1.15
    return factor


class Series:
    """The fixed draws of one series; `daily` walks its days in order."""

    def __init__(self, seed: int, store: int, store_size: float, store_rng: random.Random,
                 line_index: int, first_day: int, n_days: int, break_window: tuple[int, int],
                 promo_block: int):
        line = LINES[line_index]
        rng = random.Random(f"{seed}:{store}:{line[0]}")
        self.rng = rng
        # Campaigns draw from their own stream, so that adding future rows
        # (more campaigns at the end) leaves the history unchanged.
        self.promo_rng = random.Random(f"{seed}:{store}:{line[0]}:promo")
        self.line = line
        self.first_day = first_day
        self.level = store_size * line[1] * math.exp(rng.gauss(0.0, 0.4))
        self.growth = rng.gauss(0.03, 0.08) / 365.25
        profile = [p * math.exp(store_rng.gauss(0.0, 0.04) + rng.gauss(0.0, 0.03))
                   for p in line[2]]
        mean = sum(profile) / 7.0
        self.weekday = [p / mean for p in profile]
        self.yearly_amp = max(0.0, line[4] * math.exp(rng.gauss(0.0, 0.35)))
        self.yearly_peak = line[3] + rng.gauss(0.0, 8.0)
        self.promo_lift = max(1.05, line[5] + rng.gauss(0.0, 0.08))
        # Smaller series are noisier: σ from about 0.3 (a few units a day) to 0.04.
        self.sigma = min(0.3, max(0.04, 0.6 / math.sqrt(max(self.level, 1.0)) + 0.04))
        self.break_day, self.break_factor = None, 1.0
        if rng.random() < 0.08:
            lo, hi = break_window
            self.break_day = rng.randint(lo, max(lo, hi))
            self.break_factor = (rng.uniform(0.45, 0.8) if rng.random() < 0.4
                                 else rng.uniform(1.3, 2.0))
        self.promo_block = promo_block
        self.promo_days = self._campaigns(n_days)

    def _campaigns(self, n_days: int) -> list[int]:
        """0/1 per day from first_day on: campaigns of 3–10 days (daily) or
        1–2 whole weeks (weekly, promo_block = 7), one every ~6 weeks."""
        days = [0] * n_days
        rng = self.promo_rng
        t = self.first_day + int(rng.expovariate(1 / 21.0))
        while t < n_days:
            if self.promo_block == 7:
                t -= t % 7
                length = 7 * rng.choice((1, 1, 2))
            else:
                length = rng.randint(3, 10)
            for u in range(t, min(n_days, t + length)):
                days[u] = 1
            t += length + 7 + int(rng.expovariate(1 / 30.0))
        return days

    def daily(self, start: dt.date, n_days: int, holidays: list[list[float]], line_index: int):
        """Yields (day index, revenue, promo, price) for days first_day..n_days-1."""
        rng = self.rng
        noise = 0.0
        after = 0
        price_cut = 1.0
        for t in range(self.first_day, n_days):
            day = start + dt.timedelta(days=t)
            age = t - self.first_day
            promo = self.promo_days[t]
            if promo and (t == 0 or not self.promo_days[t - 1]):
                # A new campaign: its own price cut.
                price_cut = 1.0 - rng.uniform(0.10, 0.25)
            level = self.level * math.exp(self.growth * t)
            if self.break_day is not None and t >= self.break_day:
                level *= self.break_factor
            if self.first_day > 0 and age < RAMP_DAYS:
                level *= 0.6 + 0.4 * age / RAMP_DAYS
            doy = day.timetuple().tm_yday
            seasonal = 1.0 + self.yearly_amp * math.cos(
                2.0 * math.pi * (doy - self.yearly_peak) / 365.25)
            value = level * self.weekday[day.weekday()] * max(seasonal, 0.05)
            value *= holidays[t][line_index]
            if promo:
                value *= self.promo_lift
                after = 3
            elif after > 0:
                value *= 0.92
                after -= 1
            noise = NOISE_PHI * noise + rng.gauss(0.0, self.sigma)
            value *= math.exp(noise - self.sigma**2 / 2.0)
            price = 100.0 * math.exp(0.03 * t / 365.25) * (price_cut if promo else 1.0)
            yield t, max(0.0, value), promo, price


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Example: python3 generate_revenue.py --series 24 --future 28 --out revenue.csv")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--frequency", choices=("D", "W"), default="D",
                        help="D: daily; W: weekly, dated by Monday (default D)")
    parser.add_argument("--series", type=int, default=1000,
                        help="number of series, stores × product lines (default 1000)")
    parser.add_argument("--periods", type=int, default=None,
                        help="periods of history of the stores open from --start "
                             "(default 730 days or 156 weeks)")
    parser.add_argument("--start", default="2023-01-02",
                        help="first date, ISO (default 2023-01-02; weekly data starts on "
                             "the Monday of that week)")
    parser.add_argument("--horizon", type=int, default=None,
                        help="forecast horizon the data is meant for: sets the default "
                             "--min-length (default 28 days or 8 weeks)")
    parser.add_argument("--min-length", type=int, default=None,
                        help="shortest history of a late-opening store, in periods "
                             "(default 2 seasons + horizon: 2×7 + H or 2×52 + H)")
    parser.add_argument("--new-stores", type=float, default=0.10,
                        help="share of stores opening late, with a short history "
                             "(default 0.10)")
    parser.add_argument("--future", type=int, default=0,
                        help="also write this many future rows per series, revenue "
                             "empty, promo and price known (default 0)")
    parser.add_argument("--out", default="-", help="output CSV (default: standard output)")
    args = parser.parse_args(argv)
    freq = args.frequency
    args.periods = args.periods if args.periods is not None else DEFAULT_PERIODS[freq]
    args.horizon = args.horizon if args.horizon is not None else DEFAULT_HORIZON[freq]
    if args.min_length is None:
        args.min_length = 2 * SEASON[freq] + args.horizon
    if args.series < 1:
        parser.error("--series must be at least 1")
    if args.future < 0 or args.horizon < 1:
        parser.error("--future must be ≥ 0 and --horizon ≥ 1")
    if not 1 <= args.min_length <= args.periods:
        parser.error(f"--min-length {args.min_length} must lie in 1..--periods "
                     f"({args.periods})")
    if not 0.0 <= args.new_stores < 1.0:
        parser.error("--new-stores must be in [0, 1)")
    try:
        args.start = dt.date.fromisoformat(args.start)
    except ValueError:
        parser.error(f"--start {args.start!r} is not an ISO date (YYYY-MM-DD)")
    if freq == "W":
        args.start -= dt.timedelta(days=args.start.weekday())
    return args


def generate(args: argparse.Namespace, out) -> int:
    """Writes the CSV to `out`; returns the number of rows written."""
    freq = args.frequency
    step = 7 if freq == "W" else 1
    n_lines = min(len(LINES), args.series)
    n_stores = math.ceil(args.series / n_lines)
    total_periods = args.periods + args.future
    n_days = total_periods * step
    holidays = [[holiday_factor(args.start + dt.timedelta(days=t), line) for line in LINES]
                for t in range(n_days)]
    break_window = (int(0.2 * args.periods) * step, int(0.8 * args.periods) * step)

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["store", "product_line", "date", "revenue", "promo", "price"])
    rows = 0
    made = 0
    width = max(3, len(str(n_stores)))
    for store in range(n_stores):
        store_rng = random.Random(f"{args.seed}:store:{store}")
        store_size = math.exp(store_rng.gauss(0.0, 0.7))
        first_period = 0
        if store > 0 and store_rng.random() < args.new_stores:
            # A late opening: its history (before any future rows) is between
            # min_length and 60% of the full span.
            longest = max(args.min_length, int(0.6 * args.periods))
            length = store_rng.randint(args.min_length, longest)
            first_period = args.periods - length
        store_id = f"S{store + 1:0{width}d}"
        for line_index in range(n_lines):
            if made == args.series:
                break
            made += 1
            series = Series(args.seed, store, store_size, store_rng, line_index,
                            first_period * step, n_days, break_window, step)
            if freq == "D":
                for t, revenue, promo, price in series.daily(args.start, n_days, holidays,
                                                             line_index):
                    day = args.start + dt.timedelta(days=t)
                    future = t >= args.periods
                    writer.writerow([store_id, LINES[line_index][0], day.isoformat(),
                                     "" if future else f"{revenue:.2f}", promo,
                                     f"{price:.2f}"])
                    rows += 1
            else:
                week_revenue, week_promo, week_price = 0.0, 0, 0.0
                for t, revenue, promo, price in series.daily(args.start, n_days, holidays,
                                                             line_index):
                    week_revenue += revenue
                    week_promo = max(week_promo, promo)
                    week_price += price / 7.0
                    if t % 7 == 6:
                        week = t // 7
                        monday = args.start + dt.timedelta(days=7 * week)
                        future = week >= args.periods
                        writer.writerow([store_id, LINES[line_index][0], monday.isoformat(),
                                         "" if future else f"{week_revenue:.2f}", week_promo,
                                         f"{week_price:.2f}"])
                        rows += 1
                        week_revenue, week_promo, week_price = 0.0, 0, 0.0
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.out == "-":
        try:
            rows = generate(args, sys.stdout)
        except BrokenPipeError:  # e.g. piped into `head`
            sys.stderr.close()
            return
    else:
        with open(args.out, "w", newline="", encoding="utf-8") as out:
            rows = generate(args, out)
    print(f"wrote {rows:,} rows ({args.series} series, frequency {args.frequency}, "
          f"{args.periods} periods from {args.start.isoformat()}, {args.future} future) to "
          f"{'standard output' if args.out == '-' else args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
