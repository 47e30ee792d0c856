//! The triage matrix (DEVELOPERS.md): exposure × exploit maturity → lane, for qualifying
//! (critical) findings.
//!
//! |                  | mature exploit | other critical |
//! |------------------|----------------|----------------|
//! | Internet-facing  | P1 (next sprint) | P3 (a quarter) |
//! | internal         | P2 (a month)     | P4 (any time)  |
//!
//! A group takes its best (lowest-numbered) lane: its exposure is its most exposed project's,
//! and it is "mature" when any of its qualifying findings is.

use contracts::Lane;

use crate::exposure::Exposure;

pub fn lane(exposure: Exposure, mature: bool) -> Lane {
    match (exposure, mature) {
        (Exposure::InternetFacing, true) => Lane::P1,
        (Exposure::Internal, true) => Lane::P2,
        (Exposure::InternetFacing, false) => Lane::P3,
        (Exposure::Internal, false) => Lane::P4,
    }
}

/// The more urgent of two lanes.
pub fn best(a: Lane, b: Lane) -> Lane {
    a.min(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exposure() -> impl Strategy<Value = Exposure> {
        prop_oneof![Just(Exposure::InternetFacing), Just(Exposure::Internal)]
    }

    #[test]
    fn the_four_cells() {
        assert_eq!(lane(Exposure::InternetFacing, true), Lane::P1);
        assert_eq!(lane(Exposure::Internal, true), Lane::P2);
        assert_eq!(lane(Exposure::InternetFacing, false), Lane::P3);
        assert_eq!(lane(Exposure::Internal, false), Lane::P4);
    }

    proptest! {
        /// More exposure or a mature exploit never makes a lane less urgent.
        #[test]
        fn monotone_in_exposure_and_maturity(e in exposure(), mature in any::<bool>()) {
            prop_assert!(lane(Exposure::InternetFacing, mature) <= lane(e, mature));
            prop_assert!(lane(e, true) <= lane(e, mature));
        }

        /// A group's lane is the best lane of its findings, whatever their order.
        #[test]
        fn best_lane_is_order_independent(
            findings in proptest::collection::vec((exposure(), any::<bool>()), 1..20)
        ) {
            let lanes: Vec<Lane> = findings.iter().map(|(e, m)| lane(*e, *m)).collect();
            let forward = lanes.iter().copied().reduce(best).unwrap();
            let backward = lanes.iter().rev().copied().reduce(best).unwrap();
            prop_assert_eq!(forward, backward);
            prop_assert!(lanes.iter().all(|l| forward <= *l));
            prop_assert!(lanes.contains(&forward));
        }
    }
}
