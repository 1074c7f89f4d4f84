"""`make bench`: throughput, latency and CPU per request of every strategy at saturation (run.py)."""
