//! Host + path-prefix routing: which route a request belongs to.
//!
//! - [`RoutePattern`]: a parsed `host/prefix` pattern (`example.com/api`, `*.example.com`, `*`);
//!   grammar and normalisation in [`pattern`].
//! - [`RouteTable`]: an immutable snapshot from patterns to values, looked up by the request's
//!   host and path at a cost independent of the number of routes; the matching rule (exact host
//!   beats wildcard, longest wildcard suffix next, catch-all last; then longest prefix on `/`
//!   segment boundaries) is documented in [`table`].
//! - [`RouteScope`]: host patterns and path prefixes that bound which routes a credential (an
//!   agent token) may register; the covering rule is in [`scope`].
//!
//! ```
//! use ringway_core::route::{RoutePattern, RouteTable};
//!
//! let table = RouteTable::builder()
//!     .insert(RoutePattern::parse("example.com/api").unwrap(), "api")
//!     .insert(RoutePattern::parse("*.example.com").unwrap(), "sites")
//!     .build();
//! assert_eq!(table.lookup(b"Example.com:8080", b"/api/users?id=1"), Some(&"api"));
//! assert_eq!(table.lookup(b"example.com", b"/apix"), None);
//! assert_eq!(table.lookup(b"blog.example.com", b"/"), Some(&"sites"));
//! assert_eq!(table.lookup(b"example.com", b"/"), None); // `*.example.com` needs a label in front
//! ```

pub mod pattern;
pub mod scope;
pub mod table;

pub use pattern::{HostPattern, RouteError, RouteErrorKind, RoutePattern, MAX_HOST_LEN};
pub use scope::{PathPrefix, RouteScope};
pub use table::{RouteTable, RouteTableBuilder};
