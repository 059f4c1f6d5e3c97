//! `google.protobuf.Timestamp` <-> `time::OffsetDateTime`.

use time::OffsetDateTime;

/// A protobuf timestamp for `at`.
pub fn to_proto(at: OffsetDateTime) -> prost_types::Timestamp {
    let nanos = at.unix_timestamp_nanos();
    prost_types::Timestamp {
        seconds: at.unix_timestamp(),
        // Always in 0..1e9, so the cast cannot truncate.
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

/// The instant a protobuf timestamp names, or `None` if it is out of range.
pub fn from_proto(ts: &prost_types::Timestamp) -> Option<OffsetDateTime> {
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_sub_second_instants() {
        let at = time::macros::datetime!(2026-03-01 12:34:56.789 UTC);
        assert_eq!(from_proto(&to_proto(at)), Some(at));
    }

    #[test]
    fn instants_before_the_epoch_keep_positive_nanos() {
        let at = time::macros::datetime!(1969-12-31 23:59:59.5 UTC);
        let ts = to_proto(at);
        assert_eq!((ts.seconds, ts.nanos), (-1, 500_000_000));
        assert_eq!(from_proto(&ts), Some(at));
    }
}
