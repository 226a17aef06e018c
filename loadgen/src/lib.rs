//! ringway-loadgen as a library: the open/closed-loop engine, histograms and reports.
