"""Load, faults and verdicts for Session Lab, one idea per sub-package, in layers (bottom up; a module
imports only from its own layer or a lower one):

    lab.py    the lab's layout: nodes, routing modes, the ring, store roles' names, LabError
    users/    Locust users with the session oracle, and the raw per-request records they write
    faults/   the docker compose wrapper, readiness (every wait), the chaos script, store roles resolved at
              fault time, the store's own timeline
    scoring/  scorecard figures from raw data, the hypotheses, the HTML report
    bench/    `make bench`: wrk rounds at saturation, CPU per request with its spread, the race, growth, capacity
    runs/     the experiment runner and its suites, the soak, `make reset`, Locust as a bounded subprocess
"""
