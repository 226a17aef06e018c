//! The host report printed by `ringway-tune`.
