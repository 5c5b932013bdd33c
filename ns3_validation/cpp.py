"""C++ parts of the NS-3 harness, defined at run time through cppyy (per-packet work stays C++).

* `cpn::PathTag`: one byte carried by every packet of a task: the index of its path.
* `cpn::PinnedRouting`: an Ipv4RoutingProtocol forwarding by (source, destination, path tag)
  -> output interface, as in paper table 1; packets without a matching entry are dropped.
* `cpn::TxCounter`, `cpn::CountTx`: packets sent on each device (MacTx trace).
* `cpn::ScheduleTagged`: send n tagged UDP packets at a simulated time (sending must happen
  inside Simulator::Run, once the traffic-control layer is initialised).

Importing this module imports NS-3 (about 12 s): do it once per worker process.
"""

from __future__ import annotations

import functools

CPP_SOURCE = r"""
#include "ns3/core-module.h"
#include "ns3/network-module.h"
#include "ns3/internet-module.h"
#include <map>
#include <tuple>
#include <vector>

namespace cpn {
using namespace ns3;

class PathTag : public Tag {
 public:
  uint8_t path = 0;
  static TypeId GetTypeId() {
    static TypeId tid = TypeId("cpn::PathTag").SetParent<Tag>().AddConstructor<PathTag>();
    return tid;
  }
  TypeId GetInstanceTypeId() const override { return GetTypeId(); }
  uint32_t GetSerializedSize() const override { return 1; }
  void Serialize(TagBuffer b) const override { b.WriteU8(path); }
  void Deserialize(TagBuffer b) override { path = b.ReadU8(); }
  void Print(std::ostream& os) const override { os << "path=" << int(path); }
};

class PinnedRouting : public Ipv4RoutingProtocol {
 public:
  static TypeId GetTypeId() {
    static TypeId tid = TypeId("cpn::PinnedRouting")
                            .SetParent<Ipv4RoutingProtocol>()
                            .AddConstructor<PinnedRouting>();
    return tid;
  }
  std::map<std::tuple<uint32_t, uint32_t, int>, uint32_t> table;
  Ptr<Ipv4> ipv4;
  Ipv4Address canonical;  // the node's own address used as source of everything it sends
  uint64_t dropped = 0;

  void Add(uint32_t src, uint32_t dst, int flag, uint32_t iface) {
    table[{src, dst, flag}] = iface;
  }

  Ptr<Ipv4Route> Lookup(Ipv4Address src, Ipv4Address dst, int flag) {
    auto it = table.find({src.Get(), dst.Get(), flag});
    if (it == table.end()) return nullptr;
    Ptr<Ipv4Route> r = Create<Ipv4Route>();
    r->SetDestination(dst);
    r->SetSource(src);
    r->SetGateway(Ipv4Address("0.0.0.0"));
    r->SetOutputDevice(ipv4->GetNetDevice(it->second));
    return r;
  }
  static int Flag(Ptr<const Packet> p) {
    PathTag tag;
    return (p && p->PeekPacketTag(tag)) ? tag.path : -1;
  }
  Ptr<Ipv4Route> RouteOutput(Ptr<Packet> p, const Ipv4Header& h, Ptr<NetDevice> oif,
                             Socket::SocketErrno& err) override {
    auto r = Lookup(canonical, h.GetDestination(), Flag(p));
    err = r ? Socket::ERROR_NOTERROR : Socket::ERROR_NOROUTETOHOST;
    if (!r) dropped++;
    return r;
  }
  bool RouteInput(Ptr<const Packet> p, const Ipv4Header& h, Ptr<const NetDevice> idev,
                  const UnicastForwardCallback& ucb, const MulticastForwardCallback& mcb,
                  const LocalDeliverCallback& lcb, const ErrorCallback& ecb) override {
    int32_t iif = ipv4->GetInterfaceForDevice(idev);
    if (ipv4->IsDestinationAddress(h.GetDestination(), iif)) {
      lcb(p, h, iif);
      return true;
    }
    auto r = Lookup(h.GetSource(), h.GetDestination(), Flag(p));
    if (!r) { dropped++; return false; }
    ucb(r, p, h);
    return true;
  }
  void NotifyInterfaceUp(uint32_t) override {}
  void NotifyInterfaceDown(uint32_t) override {}
  void NotifyAddAddress(uint32_t, Ipv4InterfaceAddress) override {}
  void NotifyRemoveAddress(uint32_t, Ipv4InterfaceAddress) override {}
  void SetIpv4(Ptr<Ipv4> i) override { ipv4 = i; }
  void PrintRoutingTable(Ptr<OutputStreamWrapper>, Time::Unit) const override {}
};

Ptr<PinnedRouting> InstallPinnedRouting(Ptr<Node> node, Ipv4Address canonical) {
  Ptr<PinnedRouting> r = CreateObject<PinnedRouting>();
  r->canonical = canonical;
  node->GetObject<Ipv4L3Protocol>()->SetRoutingProtocol(r);
  return r;
}

struct TxCounter {
  uint64_t packets = 0;
  void Hit(Ptr<const Packet>) { packets++; }
};
std::vector<TxCounter*> g_counters;
TxCounter* CountTx(Ptr<NetDevice> d) {
  auto c = new TxCounter();
  g_counters.push_back(c);
  d->TraceConnectWithoutContext("MacTx", MakeCallback(&TxCounter::Hit, c));
  return c;
}

void SendTagged(Ptr<Socket> s, Ipv4Address dst, uint16_t port, int flag, int n, uint32_t size) {
  for (int i = 0; i < n; ++i) {
    Ptr<Packet> p = Create<Packet>(size);
    PathTag t;
    t.path = flag;
    p->AddPacketTag(t);
    s->SendTo(p, 0, InetSocketAddress(dst, port));
  }
}
void ScheduleTagged(double at_s, Ptr<Socket> s, Ipv4Address dst, uint16_t port, int flag, int n,
                    uint32_t size) {
  Simulator::Schedule(Seconds(at_s), &SendTagged, s, dst, port, flag, n, size);
}
}  // namespace cpn
"""


@functools.cache
def load():
    """Import NS-3, define the C++ helpers once; returns (ns, cpn namespace)."""
    import cppyy
    from ns import ns

    cppyy.cppdef(CPP_SOURCE)
    return ns, cppyy.gbl.cpn
