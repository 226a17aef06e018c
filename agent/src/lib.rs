//! ringway-agent as a library: tunnel connections to balancers and the backend pool.
