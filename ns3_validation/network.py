"""A cpnjax Topology as an NS-3 network with path-pinned routing (runs inside a worker process).

One point-to-point channel per undirected link, at the link's capacity and propagation delay,
with a DropTail device queue of `queue_packets` packets and a 9000-byte MTU (jumbo frames, as the
simulator's packets). The traffic-control layer's default queue disc (fq_codel, which
`Ipv4AddressHelper::Assign` installs) is removed, so every link is one FIFO. Every node routes
with `cpn::PinnedRouting`: a packet follows exactly the path its tag names.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cpnjax.network import Topology
from ns3_validation.cpp import load

QUEUE_PACKETS = 20_000
"""Device queue limit. Deep enough that compared runs are loss-free: 20,000 packets hold more
than 10 of the largest tasks at 9000 bytes per packet. Drops are counted all the same."""
MTU_BYTES = 9000


@dataclasses.dataclass
class Ns3Network:
    """Handles to the NS-3 objects of one topology.

    nodes: the NodeContainer; routers: (num_nodes,) PinnedRouting; address: (num_nodes,) each
    node's canonical Ipv4Address; device: (num_links,) the NetDevice sending on directed link l;
    interface: (num_links,) its interface index on the sending node; reverse_interface:
    (num_links,) the interface on its receiving node back over the same channel; tx:
    (num_links,) counters.
    """

    topology: Topology
    nodes: object
    routers: list
    address: list
    device: list
    interface: list
    reverse_interface: list
    tx: list

    def pin_path(self, src: int, dst: int, flag: int, links: np.ndarray) -> None:
        """Route packets from node src to node dst tagged `flag` along `links` (link ids)."""
        topo = self.topology
        if len(links) == 0 or topo.src[links[0]] != src or topo.dst[links[-1]] != dst:
            raise ValueError(f"links {list(links)} are not a path from {src} to {dst}")
        key = (self.address[src].Get(), self.address[dst].Get())
        for link in links:
            u = int(topo.src[link])
            self.routers[u].Add(key[0], key[1], int(flag), int(self.interface[link]))

    def pin_reverse(self, src: int, dst: int, flag: int, links: np.ndarray) -> None:
        """Route packets from dst back to src tagged `flag` along the channels of `links` (a path
        from src to dst) in reverse, whether or not the topology lists the reverse links."""
        topo = self.topology
        key = (self.address[dst].Get(), self.address[src].Get())
        for link in links:
            v = int(topo.dst[link])
            self.routers[v].Add(key[0], key[1], int(flag), int(self.reverse_interface[link]))

    def tx_packets(self) -> np.ndarray:
        """(num_links,) packets sent so far on each directed link."""
        return np.array([c.packets for c in self.tx], dtype=np.int64)


def build_network(topology: Topology, queue_packets: int = QUEUE_PACKETS) -> Ns3Network:
    """Create nodes, links (devices before the internet stack), addresses and pinned routing."""
    ns, cpn = load()
    nodes = ns.NodeContainer()
    nodes.Create(int(topology.num_nodes))
    pairs = {}
    for link in range(topology.num_links):
        u, v = int(topology.src[link]), int(topology.dst[link])
        pairs.setdefault((min(u, v), max(u, v)), link)
    p2p = ns.PointToPointHelper()
    p2p.SetQueue("ns3::DropTailQueue", "MaxSize", ns.StringValue(f"{int(queue_packets)}p"))
    p2p.SetDeviceAttribute("Mtu", ns.UintegerValue(MTU_BYTES))
    channels = {}
    for (u, v), link in pairs.items():
        p2p.SetDeviceAttribute("DataRate", ns.StringValue(f"{int(topology.capacity_bps[link])}bps"))
        delay_ns = int(round(float(topology.prop_delay_s[link]) * 1e9))
        p2p.SetChannelAttribute("Delay", ns.StringValue(f"{delay_ns}ns"))
        channels[(u, v)] = p2p.Install(nodes.Get(u), nodes.Get(v))
    ns.InternetStackHelper().Install(nodes)
    addresses = ns.Ipv4AddressHelper()
    for k, devs in enumerate(channels.values()):
        addresses.SetBase(
            ns.Ipv4Address(f"10.{k // 256}.{k % 256}.0"), ns.Ipv4Mask("255.255.255.0")
        )
        addresses.Assign(devs)
        ns.TrafficControlHelper().Uninstall(devs)
    ipv4 = [nodes.Get(i).GetObject[ns.Ipv4]() for i in range(topology.num_nodes)]
    device, interface, reverse_interface = [], [], []
    for link in range(topology.num_links):
        u, v = int(topology.src[link]), int(topology.dst[link])
        devs = channels[(min(u, v), max(u, v))]
        dev, back = (devs.Get(0), devs.Get(1)) if u < v else (devs.Get(1), devs.Get(0))
        device.append(dev)
        interface.append(int(ipv4[u].GetInterfaceForDevice(dev)))
        reverse_interface.append(int(ipv4[v].GetInterfaceForDevice(back)))
    address = [ipv4[i].GetAddress(1, 0).GetLocal() for i in range(topology.num_nodes)]
    routers = [
        cpn.InstallPinnedRouting(nodes.Get(i), address[i]) for i in range(topology.num_nodes)
    ]
    tx = [cpn.CountTx(d) for d in device]
    for d in device:
        cpn.CountDrops(d)
    return Ns3Network(topology, nodes, routers, address, device, interface, reverse_interface, tx)
