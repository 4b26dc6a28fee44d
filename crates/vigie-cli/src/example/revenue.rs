//! The example project's revenue series, for its forecast model `revenue`:
//! seeded daily revenue of every store × product line, ending yesterday.
//!
//! The model of `examples/forecasting/generate_revenue.py` (its docstring
//! says more), ported for the daily frequency; the numbers come from our own
//! generator, so the files differ. Revenue of series s on day t is a product
//! of positive factors, never negative:
//!
//! ```text
//! revenue = level_s · break_s(t) · opening_s(t) · growth_s(t) · weekday_s(t)
//!           · yearly_s(t) · holiday_line(t) · promo_lift_s^promo_s(t)
//!           · after_promo_s(t) · noise_s(t)
//! ```
//!
//! Levels span about three orders of magnitude (store size × product line);
//! a few series have a structural break; the last store opened late (a short
//! history, ramping up over its first 8 weeks); stores close on 25 December
//! and 1 January, sell more before Christmas, at Easter and on Black Friday;
//! campaigns of 3–10 days lift revenue and cut the price, and the 3 days after
//! sell less; the noise is log-normal with AR(1) memory. What it leaves out:
//! stock-outs, cannibalisation between lines, missing days. The same seed on
//! the same day gives the same file.

use std::f64::consts::PI;
use std::fmt::Write as _;

use vigie_ml::forecast::{format_time, parse_time};
use vigie_ml::rng::Rng;

/// Stores; the last one opened late.
pub const STORES: usize = 3;
/// Days of history of the stores open from the start: two years, so the
/// yearly season shows twice.
pub const DAYS: i64 = 730;
/// Periods the example's model forecasts; the late store has at least two
/// weeks and this horizon of history.
const HORIZON: i64 = 28;
/// Days over which a new store's revenue ramps up from 60% to 100%.
const RAMP_DAYS: i64 = 56;
/// "revenue" in ASCII: these draws' own stream of the seed, apart from the transactions'.
const STREAM: u64 = 0x0072_6576_656e_7565;
/// Memory of the noise from one day to the next.
const NOISE_PHI: f64 = 0.3;

/// A product line: its typical daily revenue and how its calendar looks.
pub struct Line {
    name: &'static str,
    /// Typical daily revenue of a store of size 1.
    level: f64,
    /// Monday to Sunday.
    weekday: [f64; 7],
    /// Day of the year of the yearly peak.
    peak: f64,
    /// Typical amplitude of the yearly season.
    amplitude: f64,
    /// Typical lift of a campaign.
    lift: f64,
    /// Christmas Eve's factor, reached by a quadratic ramp from 1 December.
    christmas: f64,
    /// Black Friday's factor.
    black_friday: f64,
}

/// The lines of `generate_revenue.py`, with its numbers.
pub const LINES: [Line; 9] = [
    Line::new(
        "grocery",
        2500.0,
        [0.90, 0.85, 0.90, 0.95, 1.10, 1.35, 0.95],
        350.0,
        0.08,
        1.15,
        1.25,
        1.3,
    ),
    Line::new(
        "beverages",
        900.0,
        [0.85, 0.80, 0.85, 0.95, 1.20, 1.40, 0.95],
        190.0,
        0.30,
        1.30,
        1.35,
        1.3,
    ),
    Line::new(
        "household",
        600.0,
        [0.95, 0.90, 0.95, 0.95, 1.05, 1.25, 0.95],
        100.0,
        0.10,
        1.25,
        1.20,
        1.3,
    ),
    Line::new(
        "personal_care",
        350.0,
        [0.95, 0.95, 0.95, 1.00, 1.05, 1.15, 0.95],
        160.0,
        0.08,
        1.30,
        1.40,
        1.3,
    ),
    Line::new(
        "apparel",
        450.0,
        [0.80, 0.80, 0.85, 0.95, 1.15, 1.45, 1.00],
        95.0,
        0.25,
        1.45,
        1.70,
        1.9,
    ),
    Line::new(
        "electronics",
        800.0,
        [0.80, 0.80, 0.85, 0.90, 1.10, 1.45, 1.10],
        345.0,
        0.20,
        1.50,
        2.00,
        2.5,
    ),
    Line::new(
        "garden",
        150.0,
        [0.80, 0.80, 0.85, 0.90, 1.05, 1.50, 1.10],
        135.0,
        0.45,
        1.35,
        1.10,
        1.3,
    ),
    Line::new(
        "toys",
        120.0,
        [0.80, 0.80, 0.85, 0.90, 1.10, 1.50, 1.05],
        340.0,
        0.35,
        1.40,
        2.60,
        1.3,
    ),
    Line::new(
        "books",
        40.0,
        [0.85, 0.85, 0.90, 0.95, 1.05, 1.30, 1.10],
        350.0,
        0.15,
        1.20,
        1.60,
        1.3,
    ),
];

impl Line {
    #[expect(clippy::too_many_arguments, reason = "one argument per column of the table above")]
    const fn new(
        name: &'static str,
        level: f64,
        weekday: [f64; 7],
        peak: f64,
        amplitude: f64,
        lift: f64,
        christmas: f64,
        black_friday: f64,
    ) -> Line {
        Line { name, level, weekday, peak, amplitude, lift, christmas, black_friday }
    }

    fn food(&self) -> bool {
        matches!(self.name, "grocery" | "beverages")
    }

    fn gifts(&self) -> bool {
        matches!(self.name, "apparel" | "electronics" | "toys" | "books")
    }

    /// The calendar's factor on `day`; 0 when the stores close.
    fn holiday(&self, day: &Day) -> f64 {
        let (month, dom) = (day.month, day.dom);
        if (month, dom) == (12, 25) || (month, dom) == (1, 1) {
            return 0.0;
        }
        let mut factor = 1.0;
        if month == 12 && dom <= 24 {
            factor *= 1.0 + (self.christmas - 1.0) * (f64::from(dom) / 24.0).powi(2);
            if self.food() && dom >= 23 {
                factor *= 1.4;
            }
        } else if month == 12 {
            factor *= if self.gifts() { 1.2 } else { 1.05 };
            if dom == 31 && self.name == "beverages" {
                factor *= 1.8;
            }
        }
        factor *= match day.from_easter {
            -2 => 1.15,
            -1 if self.food() => 1.3,
            -1 => 1.1,
            0 => 0.5,
            1 => 0.7,
            _ => 1.0,
        };
        factor *= match day.from_black_friday {
            0 => self.black_friday,
            1..=3 => 1.15,
            _ => 1.0,
        };
        factor
    }
}

/// What the calendar says of one day, the same for every series.
struct Day {
    /// `YYYY-MM-DD`.
    date: String,
    month: u32,
    dom: u32,
    /// 1 on 1 January.
    day_of_year: f64,
    /// Monday = 0 … Sunday = 6.
    weekday: usize,
    /// Days after Easter Sunday (negative before).
    from_easter: i64,
    /// Days after Black Friday.
    from_black_friday: i64,
}

impl Day {
    /// Day `day` (days since 1970-01-01), through `vigie_ml`'s calendar.
    fn new(day: i64) -> Day {
        let date = format_time(day as f64 * DAY_SECONDS);
        let number = |range: std::ops::Range<usize>, default: i64| {
            date.get(range).and_then(|t| t.parse().ok()).unwrap_or(default)
        };
        let year = number(0..4, 1970);
        let (month, dom) = (number(5..7, 1) as u32, number(8..10, 1) as u32);
        Day {
            month,
            dom,
            day_of_year: (day - day_number(year, 1, 1) + 1) as f64,
            weekday: weekday(day),
            from_easter: day - easter(year),
            from_black_friday: day - black_friday(year),
            date,
        }
    }
}

const DAY_SECONDS: f64 = 86_400.0;

/// The day number of a civil date, through `vigie_ml`'s calendar.
fn day_number(year: i64, month: i64, day: i64) -> i64 {
    let text = format!("{year:04}-{month:02}-{day:02}");
    parse_time(&text).map_or(0, |seconds| (seconds / DAY_SECONDS).round() as i64)
}

/// Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday).
fn weekday(day: i64) -> usize {
    (day + 3).rem_euclid(7) as usize
}

/// Easter Sunday (Gregorian; the anonymous computus of Meeus and Jones-Butcher).
fn easter(year: i64) -> i64 {
    let a = year % 19;
    let (b, c) = (year / 100, year % 100);
    let (d, e) = (b / 4, b % 4);
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    day_number(year, (h + l - 7 * m + 114) / 31, (h + l - 7 * m + 114) % 31 + 1)
}

/// The day after the fourth Thursday of November.
fn black_friday(year: i64) -> i64 {
    let first = day_number(year, 11, 1);
    let first_thursday = first + (3 - weekday(first) as i64).rem_euclid(7);
    first_thursday + 22
}

/// A uniform draw in `[low, high)`.
fn uniform(rng: &mut Rng, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.next_f64()
}

/// An exponential draw of mean `mean`.
fn exponential(rng: &mut Rng, mean: f64) -> f64 {
    -(1.0 - rng.next_f64()).ln() * mean
}

/// The daily revenue of `STORES` stores × 9 product lines over the `DAYS` days
/// before `end_day` (days since the epoch, UTC), as CSV with a header line:
/// `store,product_line,date,revenue,promo,price`, ordered by store, line and date.
pub fn revenue(seed: u64, end_day: i64) -> String {
    let start = end_day - DAYS;
    let calendar: Vec<Day> = (start..end_day).map(Day::new).collect();
    let root = Rng::new(seed).fork(STREAM);
    let mut csv = String::from("store,product_line,date,revenue,promo,price\n");
    for store in 0..STORES {
        let mut store_rng = root.fork(store as u64);
        let size = (0.7 * store_rng.normal()).exp();
        // The last store opened late: between two weeks plus the horizon and 60% of the span.
        let first = if store + 1 == STORES {
            let shortest = 14 + HORIZON;
            let length =
                shortest + (store_rng.next_f64() * (0.6 * DAYS as f64 - shortest as f64)) as i64;
            DAYS - length
        } else {
            0
        };
        for (idx, line) in LINES.iter().enumerate() {
            let mut rng = root.fork(1_000 + (store * LINES.len() + idx) as u64);
            let mut promo_rng = rng.fork(1);
            let level = size * line.level * (0.4 * rng.normal()).exp();
            let growth = (0.03 + 0.08 * rng.normal()) / 365.25;
            let profile: Vec<f64> = line
                .weekday
                .iter()
                .map(|p| p * (0.04 * store_rng.normal() + 0.03 * rng.normal()).exp())
                .collect();
            let mean = profile.iter().sum::<f64>() / 7.0;
            let amplitude = (line.amplitude * (0.35 * rng.normal()).exp()).max(0.0);
            let peak = line.peak + 8.0 * rng.normal();
            let lift = (line.lift + 0.08 * rng.normal()).max(1.05);
            // Smaller series are noisier: σ from about 0.3 (a few units a day) to 0.04.
            let sigma = (0.6 / level.max(1.0).sqrt() + 0.04).clamp(0.04, 0.3);
            let shift = (rng.next_f64() < 0.08).then(|| {
                let day = uniform(&mut rng, 0.2 * DAYS as f64, 0.8 * DAYS as f64) as i64;
                let factor = if rng.next_f64() < 0.4 {
                    uniform(&mut rng, 0.45, 0.8)
                } else {
                    uniform(&mut rng, 1.3, 2.0)
                };
                (day, factor)
            });
            // Campaigns of 3–10 days, about one every six weeks.
            let mut promo = vec![false; DAYS as usize];
            let mut t = first + exponential(&mut promo_rng, 21.0) as i64;
            while t < DAYS {
                let length = 3 + (promo_rng.next_f64() * 8.0) as i64;
                for day in t..(t + length).min(DAYS) {
                    promo[day as usize] = true;
                }
                t += length + 7 + exponential(&mut promo_rng, 30.0) as i64;
            }
            let (mut noise, mut after, mut cut) = (0.0, 0, 1.0);
            for (t, day) in calendar.iter().enumerate().skip(first as usize) {
                let t = t as i64;
                let on_promo = promo[t as usize];
                if on_promo && (t == first || !promo[t as usize - 1]) {
                    cut = 1.0 - uniform(&mut rng, 0.10, 0.25);
                }
                let mut value = level * (growth * t as f64).exp();
                if let Some((from, factor)) = shift
                    && t >= from
                {
                    value *= factor;
                }
                if first > 0 && t - first < RAMP_DAYS {
                    value *= 0.6 + 0.4 * (t - first) as f64 / RAMP_DAYS as f64;
                }
                let seasonal =
                    1.0 + amplitude * (2.0 * PI * (day.day_of_year - peak) / 365.25).cos();
                value *= profile[day.weekday] / mean * seasonal.max(0.05) * line.holiday(day);
                if on_promo {
                    value *= lift;
                    after = 3;
                } else if after > 0 {
                    value *= 0.92;
                    after -= 1;
                }
                noise = NOISE_PHI * noise + sigma * rng.normal();
                value *= (noise - sigma * sigma / 2.0).exp();
                let price =
                    100.0 * (0.03 * t as f64 / 365.25).exp() * if on_promo { cut } else { 1.0 };
                let _ = writeln!(
                    csv,
                    "S{},{},{},{:.2},{},{price:.2}",
                    store + 1,
                    line.name,
                    day.date,
                    value.max(0.0),
                    u8::from(on_promo)
                );
            }
        }
    }
    csv
}
