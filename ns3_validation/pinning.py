"""Check that path pinning works: send tagged packets on each of k paths and count, per link,
what NS-3 really sent (runs inside a worker process; see `run_in_worker`)."""

from __future__ import annotations

import json
import sys

import numpy as np

from cpnjax.network import k_shortest_paths, load_topology
from ns3_validation.network import build_network


def pinning_counts(topology_name: str, src: int, dst: int, packets_per_path: list[int]) -> dict:
    """Send packets_per_path[p] packets tagged p along the p-th shortest path from src to dst.

    Returns {"paths": [[link ids]...], "tx": [packets per directed link], "received": bytes}.
    """
    from ns3_validation.cpp import load

    ns, cpn = load()
    topology = load_topology(topology_name)
    paths = k_shortest_paths(topology.graph(), src, dst, len(packets_per_path))
    net = build_network(topology)
    for flag, links in enumerate(paths):
        net.pin_path(src, dst, flag, np.asarray(links))
    udp = ns.TypeId.LookupByName("ns3::UdpSocketFactory")
    sink = ns.Socket.CreateSocket(net.nodes.Get(dst), udp)
    sink.Bind(ns.InetSocketAddress(ns.Ipv4Address.GetAny(), 9).ConvertTo())
    sender = ns.Socket.CreateSocket(net.nodes.Get(src), udp)
    sender.Bind()
    for flag, count in enumerate(packets_per_path[: len(paths)]):
        cpn.ScheduleTagged(0.001, sender, net.address[dst], 9, flag, int(count), 1000)
    ns.Simulator.Stop(ns.Seconds(1.0))
    ns.Simulator.Run()
    out = {"paths": paths, "tx": net.tx_packets().tolist(), "received": int(sink.GetRxAvailable())}
    ns.Simulator.Destroy()
    return out


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        args = json.load(f)
    print("RESULT " + json.dumps(pinning_counts(**args)))
