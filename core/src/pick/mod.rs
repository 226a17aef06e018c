//! Pickers: choose one endpoint among a route's endpoints.
//!
//! An endpoint (an agent connection, a static backend) owns an [`EndpointLoad`]: the driver calls
//! [`EndpointLoad::start`] when it sends a request there and [`EndpointLoad::finish`] with the
//! measured round trip when the response head arrives (or [`EndpointLoad::abandon`]). To choose,
//! the driver hands the route's loads to a [`Picker`], which returns an index into that slice.
//!
//! Randomness and time are injected (`rng`, `now`), so with a seeded `rand::rngs::StdRng` and a
//! fake clock every choice is reproducible.
//!
//! | [`PickerKind`] | picker | rule |
//! |---|---|---|
//! | `round-robin` | [`RoundRobin`] | in turn |
//! | `weighted-round-robin` | [`WeightedRoundRobin`] | smooth WRR (nginx) |
//! | `least-outstanding` | [`LeastOutstanding`] | fewest in flight, random tie-break |
//! | `p2c-peak-ewma` (default) | [`P2cPeakEwma`] | best of two random by peak-EWMA cost |
//!
//! ```
//! use std::time::{Duration, Instant};
//! use rand::{rngs::StdRng, SeedableRng};
//! use ringway_core::pick::{EndpointLoad, PickerKind};
//!
//! let now = Instant::now();
//! let mut fast = EndpointLoad::new();
//! fast.start();
//! fast.finish(now, Duration::from_millis(1));
//! let mut slow = EndpointLoad::new();
//! slow.start();
//! slow.finish(now, Duration::from_millis(200));
//!
//! let mut picker = PickerKind::default().build();
//! let mut rng = StdRng::seed_from_u64(7);
//! // With two endpoints, power-of-two-choices always compares both: the fast one wins.
//! assert_eq!(picker.pick(&[&slow, &fast], &mut rng, now), Some(1));
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use rand::RngCore;

pub mod least;
pub mod load;
pub mod p2c;
pub mod round_robin;

pub use least::LeastOutstanding;
pub use load::{EndpointLoad, DEFAULT_DECAY, DEFAULT_RTT};
pub use p2c::P2cPeakEwma;
pub use round_robin::{RoundRobin, WeightedRoundRobin};

/// Chooses one endpoint of a route.
///
/// `loads` are the route's candidate endpoints, in an order the caller keeps stable between calls
/// where it can (round-robin pickers remember positions). The result is an index into `loads`,
/// always `< loads.len()`; `None` only when there is nothing to pick (no endpoints, or every weight
/// is zero for [`WeightedRoundRobin`]).
pub trait Picker: fmt::Debug {
    /// Picks an endpoint; see the trait docs.
    fn pick(
        &mut self,
        loads: &[&EndpointLoad],
        rng: &mut dyn RngCore,
        now: Instant,
    ) -> Option<usize>;

    /// Which algorithm this is.
    fn kind(&self) -> PickerKind;
}

/// The picker algorithms by name, for configuration and command lines. Parses from and displays as
/// `round-robin`, `weighted-round-robin`, `least-outstanding`, `p2c-peak-ewma` (also accepted, in
/// any case: `rr`, `wrr`, `least`, `p2c`). clap takes it through `FromStr`; with serde, use
/// `serde_with::DisplayFromStr` or a `deserialize_with` that calls `str::parse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PickerKind {
    /// [`RoundRobin`].
    RoundRobin,
    /// [`WeightedRoundRobin`] with weights from each [`EndpointLoad::weight`].
    WeightedRoundRobin,
    /// [`LeastOutstanding`].
    LeastOutstanding,
    /// [`P2cPeakEwma`], the default.
    #[default]
    P2cPeakEwma,
}

/// A picker name that [`PickerKind`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown picker {name:?}; expected one of: round-robin, weighted-round-robin, least-outstanding, p2c-peak-ewma")]
pub struct UnknownPicker {
    name: String,
}

impl PickerKind {
    /// Every kind, in the order of the table in the [module docs](self).
    pub const ALL: [Self; 4] = [
        Self::RoundRobin,
        Self::WeightedRoundRobin,
        Self::LeastOutstanding,
        Self::P2cPeakEwma,
    ];

    /// The canonical names, in the order of [`ALL`](Self::ALL) (for `PossibleValuesParser`).
    pub const NAMES: [&'static str; 4] = [
        "round-robin",
        "weighted-round-robin",
        "least-outstanding",
        "p2c-peak-ewma",
    ];

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoundRobin => "round-robin",
            Self::WeightedRoundRobin => "weighted-round-robin",
            Self::LeastOutstanding => "least-outstanding",
            Self::P2cPeakEwma => "p2c-peak-ewma",
        }
    }

    /// A fresh picker of this kind.
    pub fn build(self) -> Box<dyn Picker> {
        match self {
            Self::RoundRobin => Box::new(RoundRobin::new()),
            Self::WeightedRoundRobin => Box::new(WeightedRoundRobin::from_endpoint_weights()),
            Self::LeastOutstanding => Box::new(LeastOutstanding::new()),
            Self::P2cPeakEwma => Box::new(P2cPeakEwma::new()),
        }
    }
}

impl fmt::Display for PickerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PickerKind {
    type Err = UnknownPicker;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let kind = match lower.as_str() {
            "round-robin" | "rr" => Self::RoundRobin,
            "weighted-round-robin" | "wrr" => Self::WeightedRoundRobin,
            "least-outstanding" | "least" => Self::LeastOutstanding,
            "p2c-peak-ewma" | "p2c" => Self::P2cPeakEwma,
            _ => return Err(UnknownPicker { name: s.to_owned() }),
        };
        Ok(kind)
    }
}

impl TryFrom<&str> for PickerKind {
    type Error = UnknownPicker;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl UnknownPicker {
    /// The name that was not recognised.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (kind, name) in PickerKind::ALL.into_iter().zip(PickerKind::NAMES) {
            assert_eq!(kind.as_str(), name);
            assert_eq!(name.parse::<PickerKind>().unwrap(), kind);
            assert_eq!(kind.to_string().parse::<PickerKind>().unwrap(), kind);
            assert_eq!(kind.build().kind(), kind);
        }
        assert_eq!(
            "P2C".parse::<PickerKind>().unwrap(),
            PickerKind::P2cPeakEwma
        );
        assert_eq!(PickerKind::default(), PickerKind::P2cPeakEwma);
        let err = "fastest".parse::<PickerKind>().unwrap_err();
        assert_eq!(err.name(), "fastest");
        assert!(err.to_string().contains("p2c-peak-ewma"));
    }
}
