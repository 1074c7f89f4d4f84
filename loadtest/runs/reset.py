"""`make reset`: the lab back to the state every workshop lab starts from, whatever the last one did.

Every service running and healthy (a killed or stopped one started again), both HA stores whole (the
Sentinel primary with two replicas, every Cluster master with one), round-robin routing, and the balancer
reaching every node again (it learns that a node is back only from requests). Sessions are left alone.
"""

from __future__ import annotations

import sys

from loadtest.faults.docker import compose, current_mode, require_docker, switch_mode
from loadtest.faults.readiness import wait_balanced, wait_healthy, wait_stores_whole
from loadtest.lab import BALANCER, DEFAULT_MODE, SERVICES, LabError


def main() -> int:
    try:
        require_docker()
        # --no-deps: the one-shot cluster-init formed the Cluster once; the nodes keep it in their config.
        compose("up", "-d", "--no-deps", "--wait", "--wait-timeout", "120", BALANCER, *SERVICES, timeout=300)
        wait_healthy(BALANCER, *SERVICES)
        wait_stores_whole(lambda message: print(message, file=sys.stderr))
        if current_mode() != DEFAULT_MODE:
            switch_mode(DEFAULT_MODE)
        wait_balanced()
    except LabError as exc:
        print(f"reset: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"lab reset: every service healthy, the stores whole, {DEFAULT_MODE} routing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
