"""CAPTURE: read trace files into raw_traces (or quarantine), score them, flag failures."""
