//! ringway-balancer as a library: workers, listeners, agent registry and the request path.
