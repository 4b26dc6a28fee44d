//! The example project that `vigie init` writes: a commented `vigie.toml`,
//! a seeded table of card transactions with three fraud patterns (here) and
//! seeded daily revenue per store and product line for its forecast model
//! ([`revenue`]).
//!
//! Customers buy at their usual merchants, in their home country, on their
//! own devices, at a rate and amount of their own; some travel, change phones
//! or splurge now and then, as legitimate look-alikes of fraud. A small share meet
//! fraud: card testing (a burst of tiny online payments at many merchants
//! within minutes, mostly at night, when night owls pay too), account takeover
//! (a new device in another country, then a few large payments), amount spikes
//! (one payment many times the usual) and quiet fraud (a stolen card used much
//! as its owner would, which no feature gives away).
//! Fraudulent rows have `is_fraud = 1`. The days are the four weeks before
//! today, so the online store's values are fresh; the same seed on the same
//! day gives the same file.

pub mod revenue;

use std::fmt::Write as _;

use vigie_ml::rng::Rng;

pub use self::revenue::revenue;

/// The project file.
pub const PROJECT_FILE: &str = include_str!("vigie.toml");

const COUNTRIES: [&str; 8] = ["FR", "DE", "ES", "IT", "GB", "US", "BR", "NG"];
const CATEGORIES: [&str; 8] =
    ["grocery", "fuel", "restaurant", "electronics", "travel", "fashion", "pharmacy", "gaming"];
/// Days of transactions, ending on the day before `end_day`.
const DAYS: i64 = 28;

struct Customer {
    id: String,
    home: &'static str,
    device: String,
    mean_amount: f64,
    per_day: f64,
    merchants: Vec<usize>,
}

/// One generated transaction.
struct Transaction {
    time: i64,
    customer: usize,
    amount: f64,
    merchant: usize,
    country: &'static str,
    device: String,
    channel: &'static str,
    fraud: bool,
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) of a time in seconds.
fn iso(seconds: i64) -> String {
    let text = vigie_ml::forecast::format_time(seconds as f64);
    // `format_time` writes midnight as a bare date and other times with a `Z`.
    match text.strip_suffix('Z') {
        Some(time) => time.to_owned(),
        None => format!("{text}T00:00:00"),
    }
}

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[(rng.next_f64() * items.len() as f64) as usize % items.len()]
}

/// About `rows` transactions as CSV, with a header line, over the 28 days
/// before `end_day` (days since the epoch, UTC): the same seed and day give
/// the same file.
pub fn transactions(rows: usize, seed: u64, end_day: i64) -> String {
    let start = (end_day - DAYS) * 86_400;
    let mut rng = Rng::new(seed);
    let n_customers = (rows / 60).max(20);
    let n_merchants = (n_customers / 3).max(30);
    let per_day_target = rows as f64 / n_customers as f64 / DAYS as f64;
    let customers: Vec<Customer> = (0..n_customers)
        .map(|i| {
            let home = if rng.next_f64() < 0.7 { "FR" } else { pick(&mut rng, &COUNTRIES[..5]) };
            Customer {
                id: format!("C{i:04}"),
                home,
                device: format!("D{:05}", i * 7 + 1),
                mean_amount: (3.0 + 1.0 * rng.normal()).exp().clamp(5.0, 400.0),
                per_day: per_day_target * (0.3 + 1.4 * rng.next_f64()),
                merchants: (0..6).map(|_| (rng.next_f64() * n_merchants as f64) as usize).collect(),
            }
        })
        .collect();
    let mut txns = Vec::with_capacity(rows + rows / 10);
    for (c, customer) in customers.iter().enumerate() {
        // Legitimate look-alikes of fraud, so the patterns are not trivially separable:
        // a trip abroad, a new phone, a rare large purchase.
        let trip = (rng.next_f64() < 0.10).then(|| {
            let first = (rng.next_f64() * (DAYS - 4) as f64) as i64;
            (first, first + 2 + (rng.next_f64() * 3.0) as i64, pick(&mut rng, &COUNTRIES[5..]))
        });
        let new_phone = (rng.next_f64() < 0.08).then(|| (rng.next_f64() * DAYS as f64) as i64);
        // Night owls and shift workers pay at night too, as card testers do.
        let wake = if rng.next_f64() < 0.08 { 0.0 } else { 7.0 * 3600.0 };
        for day in 0..DAYS {
            // Poisson arrivals by inversion of exponential gaps over the waking day.
            let mut t = wake + rng.next_f64() * 3600.0;
            loop {
                t += -(1.0 - rng.next_f64()).ln() * (16.0 * 3600.0 / customer.per_day.max(0.05));
                if t >= 23.5 * 3600.0 {
                    break;
                }
                let abroad = trip
                    .and_then(|(from, to, country)| (day >= from && day <= to).then_some(country));
                let device = match new_phone {
                    Some(switch) if day >= switch => format!("N{:05}", c * 11 + 3),
                    _ => customer.device.clone(),
                };
                let splurge = if rng.next_f64() < 0.01 { 5.0 + 10.0 * rng.next_f64() } else { 1.0 };
                txns.push(Transaction {
                    time: start + day * 86_400 + t as i64,
                    customer: c,
                    amount: (customer.mean_amount * splurge * (0.5 * rng.normal()).exp() * 100.0)
                        .round()
                        / 100.0,
                    merchant: if abroad.is_some() {
                        (rng.next_f64() * n_merchants as f64) as usize
                    } else {
                        pick(&mut rng, &customer.merchants)
                    },
                    country: abroad.unwrap_or(customer.home),
                    device,
                    channel: if rng.next_f64() < 0.3 { "online" } else { "pos" },
                    fraud: false,
                });
            }
        }
        let roll = rng.next_f64();
        let when = start + (rng.next_f64() * (DAYS - 1) as f64 * 86_400.0) as i64;
        if roll < 0.04 {
            // Card testing: tiny online payments at many merchants within minutes, mostly at
            // night.
            let hour = if rng.next_f64() < 0.6 {
                1 + (rng.next_f64() * 4.0) as i64
            } else {
                9 + (rng.next_f64() * 12.0) as i64
            };
            let start = when - when.rem_euclid(86_400) + hour * 3600;
            for k in 0..(5 + (rng.next_f64() * 10.0) as i64) {
                txns.push(Transaction {
                    time: start + k * (20 + (rng.next_f64() * 60.0) as i64),
                    customer: c,
                    amount: (100.0 + rng.next_f64() * 400.0).round() / 100.0,
                    merchant: (rng.next_f64() * n_merchants as f64) as usize,
                    country: customer.home,
                    device: customer.device.clone(),
                    channel: "online",
                    fraud: true,
                });
            }
        } else if roll < 0.07 {
            // Account takeover: a new device, often abroad, then a few large payments.
            let country =
                if rng.next_f64() < 0.7 { pick(&mut rng, &COUNTRIES[5..]) } else { customer.home };
            for k in 0..(2 + (rng.next_f64() * 4.0) as i64) {
                txns.push(Transaction {
                    time: when + k * (600 + (rng.next_f64() * 3000.0) as i64),
                    customer: c,
                    amount: (customer.mean_amount * (4.0 + 6.0 * rng.next_f64()) * 100.0).round()
                        / 100.0,
                    merchant: (rng.next_f64() * n_merchants as f64) as usize,
                    country,
                    device: format!("X{:05}", c * 13 + 5),
                    channel: "online",
                    fraud: true,
                });
            }
        } else if roll < 0.105 {
            // Quiet fraud: a stolen card used like its owner would, a little larger; the
            // patterns above do not show it, so no model catches all of it.
            for _ in 0..(1 + (rng.next_f64() * 3.0) as i64) {
                txns.push(Transaction {
                    time: start + (rng.next_f64() * (DAYS - 1) as f64 * 86_400.0) as i64,
                    customer: c,
                    amount: (customer.mean_amount * (1.5 + 1.5 * rng.next_f64()) * 100.0).round()
                        / 100.0,
                    merchant: pick(&mut rng, &customer.merchants),
                    country: customer.home,
                    device: customer.device.clone(),
                    channel: if rng.next_f64() < 0.5 { "online" } else { "pos" },
                    fraud: true,
                });
            }
        } else if roll < 0.125 {
            // An amount spike at an unusual merchant.
            txns.push(Transaction {
                time: when,
                customer: c,
                amount: (customer.mean_amount * (12.0 + 20.0 * rng.next_f64()) * 100.0).round()
                    / 100.0,
                merchant: (rng.next_f64() * n_merchants as f64) as usize,
                country: customer.home,
                device: customer.device.clone(),
                channel: "online",
                fraud: true,
            });
        }
    }
    txns.sort_by_key(|t| (t.time, t.customer));
    let mut csv = String::from(
        "transaction_id,customer_id,ts,amount,merchant_id,category,country,home_country,device_id,channel,is_fraud\n",
    );
    for (i, t) in txns.iter().enumerate() {
        let customer = &customers[t.customer];
        let _ = writeln!(
            csv,
            "T{i:07},{},{},{:.2},M{:04},{},{},{},{},{},{}",
            customer.id,
            iso(t.time),
            t.amount,
            t.merchant,
            CATEGORIES[t.merchant % CATEGORIES.len()],
            t.country,
            customer.home,
            t.device,
            t.channel,
            u8::from(t.fraud)
        );
    }
    csv
}
