"""Tools for developing eval-loop, outside the loop's runtime path: the traffic generator and the benchmark."""
