//! IANA time zones (`Europe/Paris`, `America/New_York`, `UTC`), from the
//! tz database compiled into `chrono-tz`: for grouping instants into the
//! local days, weeks and months of a business, and the wall clock of hourly
//! forecasts.

use chrono::{DateTime, LocalResult, Offset as _, TimeZone as _};

pub use chrono_tz::Tz as TimeZone;

/// The zone named `name` (IANA, case-insensitive), or a message naming it.
pub fn parse_time_zone(name: &str) -> Result<TimeZone, String> {
    let wanted = name.trim();
    wanted
        .parse::<TimeZone>()
        .ok()
        .or_else(|| {
            chrono_tz::TZ_VARIANTS.into_iter().find(|zone| zone.name().eq_ignore_ascii_case(wanted))
        })
        .ok_or_else(|| {
            format!(
                "unknown time zone {name:?}; expected an IANA name such as Europe/Paris, \
                 America/New_York or UTC"
            )
        })
}

/// The wall-clock seconds in `zone` at the instant `utc_seconds` (seconds
/// since 1970-01-01T00:00:00Z): the instant plus the zone's offset then,
/// daylight saving included. `None` out of the calendar's range.
pub fn local_seconds(zone: TimeZone, utc_seconds: i64) -> Option<i64> {
    let instant = DateTime::from_timestamp(utc_seconds, 0)?;
    let offset = zone.offset_from_utc_datetime(&instant.naive_utc()).fix().local_minus_utc();
    utc_seconds.checked_add(i64::from(offset))
}

/// The instants a wall-clock time of a zone names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WallClock {
    /// One instant, seconds since 1970-01-01T00:00:00Z.
    Single(i64),
    /// Two, in the hour repeated when the clocks go back: the earlier (still
    /// on daylight time) and the later.
    Repeated(i64, i64),
    /// None: the clocks skipped it (going forward).
    Skipped,
}

/// The instants at which the clocks of `zone` show `local_seconds` (seconds
/// since 1970-01-01T00:00:00 on the wall clock); `None` out of the
/// calendar's range. The inverse of [`local_seconds`].
pub fn wall_clock_instants(zone: TimeZone, local_seconds: i64) -> Option<WallClock> {
    let wall = DateTime::from_timestamp(local_seconds, 0)?.naive_utc();
    Some(match zone.from_local_datetime(&wall) {
        LocalResult::Single(at) => WallClock::Single(at.timestamp()),
        LocalResult::Ambiguous(first, second) => {
            let (a, b) = (first.timestamp(), second.timestamp());
            WallClock::Repeated(a.min(b), a.max(b))
        }
        LocalResult::None => WallClock::Skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_whatever_their_case_and_unknown_ones_are_named() {
        assert_eq!(parse_time_zone("Europe/Paris").unwrap().name(), "Europe/Paris");
        assert_eq!(parse_time_zone(" america/new_york ").unwrap().name(), "America/New_York");
        let error = parse_time_zone("Europe/Pari").unwrap_err();
        assert!(error.contains("\"Europe/Pari\"") && error.contains("IANA"), "{error}");
    }

    #[test]
    fn local_seconds_follow_daylight_saving() {
        let paris = parse_time_zone("Europe/Paris").unwrap();
        // 2024-01-15T12:00:00Z is 13:00 in Paris (UTC+1), 2024-07-15T12:00:00Z is 14:00 (UTC+2).
        assert_eq!(local_seconds(paris, 1_705_320_000), Some(1_705_320_000 + 3_600));
        assert_eq!(local_seconds(paris, 1_721_044_800), Some(1_721_044_800 + 7_200));
        let new_york = parse_time_zone("America/New_York").unwrap();
        assert_eq!(local_seconds(new_york, 1_705_320_000), Some(1_705_320_000 - 5 * 3_600));
        assert_eq!(local_seconds(parse_time_zone("UTC").unwrap(), 42), Some(42));
    }

    #[test]
    fn wall_clock_times_name_one_instant_two_or_none_across_daylight_saving() {
        let new_york = parse_time_zone("America/New_York").unwrap();
        // 2024-03-10 01:30 EST is 06:30Z; 02:30 does not exist; 03:30 EDT is 07:30Z.
        let march_10 = 1_710_028_800;
        assert_eq!(
            wall_clock_instants(new_york, march_10 + 5_400),
            Some(WallClock::Single(march_10 + 5_400 + 5 * 3_600))
        );
        assert_eq!(wall_clock_instants(new_york, march_10 + 9_000), Some(WallClock::Skipped));
        assert_eq!(
            wall_clock_instants(new_york, march_10 + 12_600),
            Some(WallClock::Single(march_10 + 12_600 + 4 * 3_600))
        );
        // 2024-11-03 01:30 is 05:30Z (EDT), then 06:30Z (EST).
        let november_3 = 1_730_592_000;
        assert_eq!(
            wall_clock_instants(new_york, november_3 + 5_400),
            Some(WallClock::Repeated(
                november_3 + 5_400 + 4 * 3_600,
                november_3 + 5_400 + 5 * 3_600
            ))
        );
        for utc in [march_10 + 20_000, november_3 + 7_000] {
            let local = local_seconds(new_york, utc).unwrap();
            assert_eq!(wall_clock_instants(new_york, local), Some(WallClock::Single(utc)));
        }
    }
}
