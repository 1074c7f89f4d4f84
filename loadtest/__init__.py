"""Load, faults and verdicts for Session Lab, one idea per sub-package:

    users/    Locust users with the session oracle, and the raw per-request records they write
    faults/   the chaos script, store roles resolved at fault time, the store's own timeline, docker compose
    runs/     the experiment runner and its suites, the soak, Locust as a bounded subprocess
    scoring/  scorecard figures from raw data, the hypotheses, the HTML report
"""
