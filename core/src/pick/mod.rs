//! Pickers: choose one endpoint among a route's endpoints.
