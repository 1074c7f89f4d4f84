"""Only nginx is reachable from the host: the nodes and the stores sit on `internal` networks that give the
host no address and no route (docker-compose.yml's networks), so nothing goes around the balancer."""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess

import pytest

from tests.e2e.conftest import NODES, PROJECT

pytestmark = pytest.mark.e2e

STORES = ["redis", "sentinel-data1", "sentinel1", "cluster1"]


def inspect(kind: str, name: str) -> dict:
    out = subprocess.run(["docker", kind, "inspect", name], capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]


def container_networks(lab, service: str) -> dict[str, str]:
    cid = lab.compose("ps", "-q", service).strip()
    return {name: net["IPAddress"] for name, net in inspect("container", cid)["NetworkSettings"]["Networks"].items()}


def host_addresses() -> list[ipaddress.IPv4Interface]:
    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True).stdout
    return [ipaddress.IPv4Interface(line.split()[3]) for line in out.splitlines()]


def bridge_of(network: str) -> str:
    """The host's bridge device of a compose network (Docker names it br-<first 12 hex of the id>)."""
    return "br-" + inspect("network", network)["Id"][:12]


def connect_on(device: str, ip: str, port: int) -> bool:
    """A TCP connect from the host sent out on one bridge only (SO_BINDTODEVICE), so the probe stays on that
    bridge and never follows the host's default route off the machine. True when it connected."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
        s.settimeout(2)
        try:
            s.connect((ip, port))
        except OSError:
            return False
        return True


def test_nodes_and_stores_are_only_on_internal_networks(lab):
    for service in NODES + STORES:
        for network in container_networks(lab, service):
            assert inspect("network", network)["Internal"], f"{service} is on {network}, which is not internal"
    assert set(container_networks(lab, "lb")) == {f"{PROJECT}_edge", f"{PROJECT}_front"}


def test_the_host_has_no_address_on_the_nodes_or_stores_networks(lab):
    subnets = [ipaddress.IPv4Network(inspect("network", f"{PROJECT}_{name}")["IPAM"]["Config"][0]["Subnet"])
               for name in ("front", "back")]
    on_them = [str(a) for a in host_addresses() for net in subnets if a.ip in net]
    assert not on_them, f"the host holds {on_them}: it could reach the nodes or stores around nginx"


@pytest.mark.parametrize("service,port", [(n, 8000) for n in NODES] + [("redis", 6379), ("cluster1", 6379)])
def test_a_node_or_store_is_unreachable_from_the_host(lab, service, port):
    for network, ip in container_networks(lab, service).items():
        assert not connect_on(bridge_of(network), ip, port), f"the host reached {service} at {ip}:{port} on {network}"
    # The same node answers through nginx, pinned with the lab's header.
    if service in NODES:
        reply = lab.get("/healthz", headers={"X-Lab-Node": service})
        assert reply.status_code == 200 and reply.headers["X-Served-By"] == service


def test_the_probe_can_tell_reachable_from_unreachable(lab):
    """The check above is no tautology: on the edge network the same probe reaches nginx's own port."""
    network, ip = next((n, a) for n, a in container_networks(lab, "lb").items() if n.endswith("_edge"))
    assert connect_on(bridge_of(network), ip, 8080)
