"""`modelmon bench` (`make bench`): throughput against a passthrough baseline, label-to-metric latency, memory
and state, and how cost grows with input and parallelism, on the local broker and minicluster. Figures are
printed, never asserted."""
