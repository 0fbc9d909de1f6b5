"""One module per step of the loop; each asset loads, calls the core, writes, and describes."""
