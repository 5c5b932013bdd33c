"""Worker: play one replay plan in NS-3 (`python -m ns3_validation.run PLAN.json`, in a clean
temporary directory; see `worker.run_module`). Prints `RESULT {json}`.

Result: per task the absolute times (s) at which each path's last byte arrived, the data was
complete, compute started and ended (-1: never), the mean probe delay per candidate slot (-1:
no probe), packet counters and wall times.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from cpnjax.network import Topology
from ns3_validation.plan import (
    ACK_FLAG,
    BG_FLAG,
    IP_TCP_HEADER_BYTES,
    IP_UDP_HEADER_BYTES,
    PPP_HEADER_BYTES,
)


def play(plan: dict) -> dict:
    start = time.perf_counter()
    from ns3_validation.cpp import load
    from ns3_validation.network import build_network

    ns, cpn = load()
    import_s = time.perf_counter() - start
    t0 = time.perf_counter()
    settings = plan["settings"]
    ns.RngSeedManager.SetSeed(int(settings["seed"]))
    ns.RngSeedManager.SetRun(1)
    topo = plan["topology"]
    topology = Topology(
        name=topo["name"],
        num_nodes=int(topo["num_nodes"]),
        src=np.asarray(topo["src"], np.int64),
        dst=np.asarray(topo["dst"], np.int64),
        capacity_bps=np.asarray(topo["capacity_bps"], np.float64),
        prop_delay_s=np.asarray(topo["prop_delay_s"], np.float64),
        weight=np.ones(len(topo["src"])),
    )
    net = build_network(topology, int(settings["queue_packets"]))
    for src, dst, flag, links in plan["pins"]:
        net.pin_path(int(src), int(dst), int(flag), np.asarray(links, np.int64))

    tasks = plan["tasks"]
    num_nodes = topology.num_nodes
    tcp = settings["transport"] == "tcp"
    if tcp:  # before any socket exists: the defaults apply to sockets created later
        cpn.UseTcp(int(settings["packet_bytes"]) - IP_TCP_HEADER_BYTES)
        for src, dst, flag, links in plan["pins"]:
            if flag != BG_FLAG:
                net.pin_reverse(int(src), int(dst), ACK_FLAG + int(flag), np.asarray(links))
    cpn.InitRun(
        num_nodes,
        settings["compute_order"] == "dispatch",
        int(plan["num_slots"]),
        len(tasks),
        int(settings["packet_bytes"]) - IP_UDP_HEADER_BYTES,
        int(settings["probe_bytes"]) - IP_UDP_HEADER_BYTES,
        int(settings["flowlet_bytes"]),
    )
    for i in range(num_nodes):
        cpn.OpenSocket(net.nodes.Get(i))
        if tcp:
            cpn.ListenTcp(net.nodes.Get(i), int(plan["num_paths"]))
    pin = {(s, d, f): links for s, d, f, links in plan["pins"]}

    def first_iface(src: int, dst: int, flag: int) -> int:
        return int(net.interface[pin[(src, dst, flag)][0]])

    pacers = set()
    for task in tasks:
        src, node = int(task["src"]), int(task["node"])
        flags = list(range(len(task["bytes"])))
        ifaces = [first_iface(src, node, f) if b > 0 else -1 for f, b in enumerate(task["bytes"])]
        ifaces_probe = [first_iface(src, m, k) for m, k, _ in task["probes"]]
        for iface in [*ifaces, *ifaces_probe]:
            if iface >= 0 and (src, iface) not in pacers:
                pacers.add((src, iface))
                link = next(
                    link
                    for link in range(topology.num_links)
                    if topology.src[link] == src and int(net.interface[link]) == iface
                )
                cpn.AddPacer(src, iface, float(topology.capacity_bps[link]))
        tid = cpn.AddTask(
            float(task["arrival_s"]),
            src,
            node,
            net.address[node],
            float(task["compute_s"]),
            flags,
            ifaces,
            [int(b) for b in task["bytes"]],
        )
        for (m, k, slot), iface in zip(task["probes"], ifaces_probe, strict=True):
            cpn.AddProbe(tid, net.address[int(m)], int(k), iface, int(slot))

    bg_payload = int(settings["background_packet_bytes"]) - IP_UDP_HEADER_BYTES
    for stream, bg in enumerate(plan["background"]):
        cpn.AddBackground(
            int(bg["node"]),
            float(bg["packets_per_s"]),
            [net.address[int(d)] for d in bg["dsts"]],
            [float(w) for w in bg["weights"]],
            bg_payload,
            2 * stream,
        )
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    ns.Simulator.Stop(ns.Seconds(float(plan["stop_s"])))
    ns.Simulator.Run()
    run_s = time.perf_counter() - t1
    end_time_s = ns.Simulator.Now().GetSeconds()

    times = np.array([list(cpn.TaskTimes(i)) for i in range(len(tasks))])
    counters = list(cpn.Counters())
    routing_drops = int(sum(r.dropped for r in net.routers))
    out = {
        "path_done_s": [list(cpn.PathDone(i)) for i in range(len(tasks))],
        "data_done_s": times[:, 0].tolist(),
        "start_s": times[:, 1].tolist(),
        "end_s": times[:, 2].tolist(),
        "probe_delay_s": [list(cpn.ProbeMeans(i)) for i in range(len(tasks))],
        "counters": {
            "data_packets_sent": int(counters[0]),
            "background_packets_sent": int(counters[1]),
            "background_packets_received": int(counters[2]),
            "stray_packets": int(counters[3]),
            "lost_task_packets": int(counters[4]),
            "lost_background_packets": int(counters[5]),
            "routing_drops": routing_drops,
            "tcp_connect_failures": int(counters[6]),
            "link_packets": int(net.tx_packets().sum()),
        },
        "link_tx_packets": net.tx_packets().tolist(),
        "end_time_s": end_time_s,
        "wall_s": {"import": import_s, "setup": setup_s, "run": run_s},
        "wire_overhead_bytes": IP_UDP_HEADER_BYTES + PPP_HEADER_BYTES,
        "background_flag": BG_FLAG,
    }
    ns.Simulator.Destroy()
    return out


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        plan = json.load(f)
    print("RESULT " + json.dumps(play(plan)))
