"""C++ parts of the NS-3 harness, defined at run time through cppyy (all per-packet work is C++).

* `cpn::CpnTag`: carried by every packet we send: its routing flag (path index, 255 for
  background), its kind (data, probe, background), task id, probe slot and send time.
* `cpn::PinnedRouting`: an Ipv4RoutingProtocol forwarding by (source, destination, flag) ->
  output interface, as in paper table 1; packets without a matching entry are dropped (counted).
* `cpn::Pacer`: one per (sending node, output interface). A FIFO of flowlets sent packet by
  packet at the interface's line rate (UDP). Tasks queue behind earlier tasks at the sender.
* TCP option (`UseTcp`): each used path of a task is one TCP connection (ns-3's default TCP)
  to port TCP_PORT + path flag on the node; routers read the flag from that port (and pin the
  acks, source port in range, to the reverse path as flag 128 + f). The stream carries an
  8-byte header (task id, path) before the path's bytes; `TcpSink` counts them per task.
* `cpn::StartTask`: at a task's arrival, 3 back-to-back probes per candidate path, then the
  task's bytes cut into flowlets, assigned to paths by smooth weighted round robin over the
  split ratios, each flowlet queued on the pacer of its path's first interface.
* `cpn::Sink`: one UDP socket per node; counts task bytes per path, probe one-way delays and
  background packets. When a task's last byte arrives it joins its node's compute server.
* Compute servers: FIFO per node in order of data arrival (default) or in dispatch order; a task
  computes for its measured latency; the run stops when every task has finished.
* `cpn::BgSource`: one per node with background demand: Poisson packets at the node's total
  demand, each to a destination drawn in proportion to the demand (thinning a Poisson process
  gives one independent Poisson flow per destination).
* Loss: every device queue's Drop trace, split into task packets and background packets.

Importing this module imports NS-3 (about 12 s): do it once per worker process.
"""

from __future__ import annotations

import functools

CPP_SOURCE = r"""
#include "ns3/core-module.h"
#include "ns3/network-module.h"
#include "ns3/internet-module.h"
#include "ns3/point-to-point-module.h"
#include <algorithm>
#include <deque>
#include <map>
#include <tuple>
#include <vector>

namespace cpn {
using namespace ns3;

enum Kind : uint8_t { DATA = 0, PROBE = 1, BG = 2 };
const uint8_t BG_FLAG = 255;
const uint16_t PORT = 9;
const uint16_t TCP_PORT = 20000;  // a task's TCP connection on path flag f goes to TCP_PORT + f
const int TCP_PORTS = 64;
const int ACK_FLAG = 128;  // the reverse direction of path flag f (TCP acks) is pinned as 128 + f

class CpnTag : public Tag {
 public:
  uint8_t path = 0;
  uint8_t kind = DATA;
  uint16_t slot = 0;
  uint32_t task = 0;
  int64_t sent_ns = 0;
  static TypeId GetTypeId() {
    static TypeId tid = TypeId("cpn::CpnTag").SetParent<Tag>().AddConstructor<CpnTag>();
    return tid;
  }
  TypeId GetInstanceTypeId() const override { return GetTypeId(); }
  uint32_t GetSerializedSize() const override { return 16; }
  void Serialize(TagBuffer b) const override {
    b.WriteU8(path); b.WriteU8(kind); b.WriteU16(slot); b.WriteU32(task); b.WriteU64(sent_ns);
  }
  void Deserialize(TagBuffer b) override {
    path = b.ReadU8(); kind = b.ReadU8(); slot = b.ReadU16(); task = b.ReadU32();
    sent_ns = b.ReadU64();
  }
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
  // The path flag: our tag (UDP data, probes, background), else a TCP port in our range.
  static int Flag(Ptr<const Packet> p, const Ipv4Header& h) {
    CpnTag tag;
    if (p && p->PeekPacketTag(tag)) return tag.path;
    if (p && h.GetProtocol() == 6 && p->GetSize() >= 20) {
      TcpHeader th;
      p->PeekHeader(th);
      int d = th.GetDestinationPort() - TCP_PORT, s = th.GetSourcePort() - TCP_PORT;
      if (d >= 0 && d < TCP_PORTS) return d;
      if (s >= 0 && s < TCP_PORTS) return ACK_FLAG + s;
    }
    return -1;
  }
  // Any pinned route from src to dst: what TCP asks for with an empty packet when it connects
  // (to choose a source address); the segments themselves are routed by their ports.
  Ptr<Ipv4Route> LookupAny(Ipv4Address src, Ipv4Address dst) {
    auto it = table.lower_bound({src.Get(), dst.Get(), -1});
    if (it == table.end() || std::get<0>(it->first) != src.Get() ||
        std::get<1>(it->first) != dst.Get())
      return nullptr;
    return Lookup(src, dst, std::get<2>(it->first));
  }
  Ptr<Ipv4Route> RouteOutput(Ptr<Packet> p, const Ipv4Header& h, Ptr<NetDevice> oif,
                             Socket::SocketErrno& err) override {
    auto r = Lookup(canonical, h.GetDestination(), Flag(p, h));
    if (!r && (!p || p->GetSize() == 0)) r = LookupAny(canonical, h.GetDestination());
    err = r ? Socket::ERROR_NOTERROR : Socket::ERROR_NOROUTETOHOST;
    if (!r && p) dropped++;
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
    auto r = Lookup(h.GetSource(), h.GetDestination(), Flag(p, h));
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

// ---------------------------------------------------------------- counters (MacTx, drops)
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

struct DropCounter {
  uint64_t task_packets = 0;  // data and probes
  uint64_t bg_packets = 0;
  void Hit(Ptr<const Packet> p) {
    CpnTag t;
    if (p->PeekPacketTag(t) && t.kind == BG) bg_packets++; else task_packets++;
  }
};
DropCounter g_drops;
void CountDrops(Ptr<NetDevice> d) {
  Ptr<PointToPointNetDevice> p2p = DynamicCast<PointToPointNetDevice>(d);
  p2p->GetQueue()->TraceConnectWithoutContext("Drop", MakeCallback(&DropCounter::Hit, &g_drops));
}

// ---------------------------------------------------------------- tasks and compute servers
struct TaskRec {
  uint32_t node = 0;
  double arrival_s = 0, compute_s = 0;
  std::vector<uint64_t> expect, got;
  std::vector<double> path_done_s;  // absolute time the path's last byte arrived, -1: not yet
  uint64_t left = 0;
  double data_done_s = -1, start_s = -1, end_s = -1;
  // what StartTask sends
  uint32_t src = 0;
  Ipv4Address dst;
  std::vector<int> flags, ifaces;
  std::vector<Ipv4Address> probe_dst;
  std::vector<int> probe_flag, probe_iface, probe_slot;
};

struct Server {
  std::deque<uint32_t> queue;  // arrival order: tasks whose data is in, waiting
  std::vector<uint32_t> order;  // dispatch order: every task sent to this node
  size_t next = 0;
  bool busy = false;
};

struct Run {
  std::vector<TaskRec> tasks;
  std::vector<Server> servers;
  bool dispatch_order = false;
  uint32_t done = 0;
  uint32_t probe_slots = 0;
  std::vector<double> probe_sum_s;
  std::vector<uint32_t> probe_count;
  uint64_t bg_tx = 0, bg_rx = 0, data_tx = 0, stray_rx = 0;
  uint64_t tcp_connect_failures = 0;
  bool tcp = false;  // task data over TCP (one connection per used path) instead of paced UDP
};
Run g;

void Finish(uint32_t node, uint32_t task);

void Begin(uint32_t node, uint32_t task) {
  Server& s = g.servers[node];
  s.busy = true;
  g.tasks[task].start_s = Simulator::Now().GetSeconds();
  Simulator::Schedule(Seconds(g.tasks[task].compute_s), &Finish, node, task);
}

void TryStart(uint32_t node) {
  Server& s = g.servers[node];
  if (s.busy) return;
  if (g.dispatch_order) {
    if (s.next >= s.order.size()) return;
    uint32_t t = s.order[s.next];
    if (g.tasks[t].data_done_s < 0) return;  // the next task in dispatch order is not in yet
    s.next++;
    Begin(node, t);
  } else {
    if (s.queue.empty()) return;
    uint32_t t = s.queue.front();
    s.queue.pop_front();
    Begin(node, t);
  }
}

void Finish(uint32_t node, uint32_t task) {
  g.servers[node].busy = false;
  g.tasks[task].end_s = Simulator::Now().GetSeconds();
  if (++g.done == g.tasks.size()) { Simulator::Stop(); return; }
  TryStart(node);
}

void OnData(uint32_t task, uint8_t path, uint32_t bytes) {
  TaskRec& r = g.tasks[task];
  double now = Simulator::Now().GetSeconds();
  r.got[path] += bytes;
  if (r.got[path] == r.expect[path]) r.path_done_s[path] = now;
  r.left -= bytes;
  if (r.left == 0) {
    r.data_done_s = now;
    if (!g.dispatch_order) g.servers[r.node].queue.push_back(task);
    TryStart(r.node);
  }
}

// ---------------------------------------------------------------- receiving
struct Sink {
  void Recv(Ptr<Socket> s) {
    Ptr<Packet> p;
    while ((p = s->Recv())) {
      CpnTag t;
      if (!p->PeekPacketTag(t)) { g.stray_rx++; continue; }
      if (t.kind == DATA) {
        OnData(t.task, t.path, p->GetSize());
      } else if (t.kind == PROBE) {
        size_t i = size_t(t.task) * g.probe_slots + t.slot;
        g.probe_sum_s[i] += (Simulator::Now().GetNanoSeconds() - t.sent_ns) * 1e-9;
        g.probe_count[i]++;
      } else {
        g.bg_rx++;
      }
    }
  }
};
Sink g_sink;
std::vector<Ptr<Socket>> g_sockets;  // one UDP socket per node, bound to PORT

Ptr<Socket> OpenSocket(Ptr<Node> node) {
  Ptr<Socket> s = Socket::CreateSocket(node, UdpSocketFactory::GetTypeId());
  s->Bind(InetSocketAddress(Ipv4Address::GetAny(), PORT));
  s->SetRecvCallback(MakeCallback(&Sink::Recv, &g_sink));
  g_sockets.push_back(s);
  return s;
}

// ---------------------------------------------------------------- sending (paced flowlets)
struct Flowlet {
  Ipv4Address dst;
  uint8_t path, kind;
  uint16_t slot;
  uint32_t task, bytes, packet_payload;
};

class Pacer {
 public:
  Ptr<Socket> socket;
  double rate_bps = 0;
  uint32_t overhead = 30;  // UDP 8 + IPv4 20 + PPP 2 bytes on the wire per packet
  std::deque<Flowlet> q;
  bool running = false;

  void Push(const Flowlet& f) {
    q.push_back(f);
    if (!running) { running = true; SendNext(); }
  }
  void SendNext() {
    if (q.empty()) { running = false; return; }
    Flowlet& f = q.front();
    uint32_t n = std::min(f.packet_payload, f.bytes);
    Ptr<Packet> p = Create<Packet>(n);
    CpnTag t;
    t.path = f.path; t.kind = f.kind; t.slot = f.slot; t.task = f.task;
    t.sent_ns = Simulator::Now().GetNanoSeconds();
    p->AddPacketTag(t);
    socket->SendTo(p, 0, InetSocketAddress(f.dst, PORT));
    if (f.kind == DATA) g.data_tx++;
    f.bytes -= n;
    if (f.bytes == 0) q.pop_front();
    Simulator::Schedule(Seconds((n + overhead) * 8.0 / rate_bps), &Pacer::SendNext, this);
  }
};
std::map<std::pair<uint32_t, int>, Pacer*> g_pacers;  // (node, interface)

void AddPacer(uint32_t node, int iface, double rate_bps) {
  Pacer* p = new Pacer();
  p->socket = g_sockets[node];
  p->rate_bps = rate_bps;
  g_pacers[{node, iface}] = p;
}

uint32_t g_packet_payload = 8972, g_probe_payload = 36, g_flowlet_bytes = 65536;

// ---------------------------------------------------------------- task data over TCP
// Each used path of a task is one TCP connection from the access point to TCP_PORT + flag on the
// node (routed by that port; its acks come back on the reverse path, flag ACK_FLAG + flag). The
// stream starts with an 8-byte header (task id, path), then the path's bytes.
const uint32_t TCP_HEADER = 8;

struct TcpTx {
  uint32_t task = 0;
  uint8_t path = 0;
  uint64_t left = 0;
  bool header_sent = false, closed = false;
};
std::map<Socket*, TcpTx> g_tcp_tx;

void TcpFill(Ptr<Socket> s, uint32_t) {
  TcpTx& f = g_tcp_tx[PeekPointer(s)];
  if (!f.header_sent) {
    if (s->GetTxAvailable() < TCP_HEADER) return;
    uint8_t h[TCP_HEADER] = {uint8_t(f.task), uint8_t(f.task >> 8), uint8_t(f.task >> 16),
                             uint8_t(f.task >> 24), f.path, 0, 0, 0};
    s->Send(h, TCP_HEADER, 0);
    f.header_sent = true;
  }
  while (f.left > 0) {
    uint32_t n = uint32_t(std::min<uint64_t>({f.left, s->GetTxAvailable(), 1u << 20}));
    if (n == 0) return;
    int sent = s->Send(Create<Packet>(n));
    if (sent <= 0) return;
    f.left -= uint64_t(sent);
  }
  if (!f.closed) { f.closed = true; s->Close(); }
}
void TcpConnected(Ptr<Socket> s) { TcpFill(s, s->GetTxAvailable()); }
void TcpFailed(Ptr<Socket> s) { g.tcp_connect_failures++; }

void StartTcp(uint32_t task) {
  TaskRec& r = g.tasks[task];
  Ptr<Node> node = g_sockets[r.src]->GetNode();
  for (size_t p = 0; p < r.flags.size(); ++p) {
    if (r.expect[p] == 0) continue;
    Ptr<Socket> s = Socket::CreateSocket(node, TcpSocketFactory::GetTypeId());
    TcpTx f;
    f.task = task; f.path = uint8_t(p); f.left = r.expect[p];
    g_tcp_tx[PeekPointer(s)] = f;
    s->Bind();
    s->SetConnectCallback(MakeCallback(&TcpConnected), MakeCallback(&TcpFailed));
    s->SetSendCallback(MakeCallback(&TcpFill));
    s->Connect(InetSocketAddress(r.dst, uint16_t(TCP_PORT + r.flags[p])));
  }
}

struct TcpRx {
  uint8_t header[TCP_HEADER];
  uint32_t header_got = 0;
};
struct TcpSink {
  std::map<Socket*, TcpRx> rx;
  void Accept(Ptr<Socket> s, const Address&) {
    rx[PeekPointer(s)] = TcpRx();
    s->SetRecvCallback(MakeCallback(&TcpSink::Recv, this));
  }
  void Recv(Ptr<Socket> s) {
    TcpRx& st = rx[PeekPointer(s)];
    Ptr<Packet> p;
    while ((p = s->Recv())) {
      uint32_t n = p->GetSize(), used = 0;
      if (st.header_got < TCP_HEADER) {
        std::vector<uint8_t> buf(n);
        p->CopyData(buf.data(), n);
        used = std::min(n, TCP_HEADER - st.header_got);
        std::copy(buf.begin(), buf.begin() + used, st.header + st.header_got);
        st.header_got += used;
      }
      if (st.header_got == TCP_HEADER && n > used) {
        uint32_t task = st.header[0] | (st.header[1] << 8) | (st.header[2] << 16) |
                        (uint32_t(st.header[3]) << 24);
        OnData(task, st.header[4], n - used);
      }
    }
  }
};
TcpSink g_tcp_sink;
std::vector<Ptr<Socket>> g_tcp_listeners;

void ListenTcp(Ptr<Node> node, uint32_t num_paths) {
  for (uint32_t f = 0; f < num_paths; ++f) {
    Ptr<Socket> s = Socket::CreateSocket(node, TcpSocketFactory::GetTypeId());
    s->Bind(InetSocketAddress(Ipv4Address::GetAny(), uint16_t(TCP_PORT + f)));
    s->Listen();
    s->SetAcceptCallback(MakeNullCallback<bool, Ptr<Socket>, const Address&>(),
                         MakeCallback(&TcpSink::Accept, &g_tcp_sink));
    g_tcp_listeners.push_back(s);
  }
}

void UseTcp(uint32_t segment_bytes) {
  g.tcp = true;
  Config::SetDefault("ns3::TcpSocket::SegmentSize", UintegerValue(segment_bytes));
  Config::SetDefault("ns3::TcpSocket::SndBufSize", UintegerValue(1u << 24));
  Config::SetDefault("ns3::TcpSocket::RcvBufSize", UintegerValue(1u << 24));
}

void StartTask(uint32_t task) {
  TaskRec& r = g.tasks[task];
  for (size_t i = 0; i < r.probe_dst.size(); ++i) {  // 3 back-to-back probes per candidate path
    Flowlet f{r.probe_dst[i], uint8_t(r.probe_flag[i]), PROBE, uint16_t(r.probe_slot[i]), task,
              3 * g_probe_payload, g_probe_payload};
    g_pacers.at({r.src, r.probe_iface[i]})->Push(f);
  }
  if (g.tcp) { StartTcp(task); return; }
  // Smooth weighted round robin: flowlet j of path p (m_p flowlets) goes at (j + 0.5) / m_p.
  std::vector<std::tuple<double, int, uint32_t>> order;
  for (size_t p = 0; p < r.flags.size(); ++p) {
    uint64_t b = r.expect[p];
    uint32_t m = uint32_t((b + g_flowlet_bytes - 1) / g_flowlet_bytes);
    for (uint32_t j = 0; j < m; ++j) {
      uint64_t rest = b - uint64_t(j) * g_flowlet_bytes;
      uint32_t size = uint32_t(std::min<uint64_t>(g_flowlet_bytes, rest));
      order.emplace_back((j + 0.5) / m, int(p), size);
    }
  }
  std::stable_sort(order.begin(), order.end(),
                   [](auto& a, auto& b) { return std::get<0>(a) < std::get<0>(b); });
  for (auto& [key, p, size] : order) {
    Flowlet f{r.dst, uint8_t(r.flags[p]), DATA, 0, task, size, g_packet_payload};
    g_pacers.at({r.src, r.ifaces[p]})->Push(f);
  }
}

uint32_t AddTask(double arrival_s, uint32_t src, uint32_t node, Ipv4Address dst, double compute_s,
                 const std::vector<int>& flags, const std::vector<int>& ifaces,
                 const std::vector<long>& bytes) {
  TaskRec r;
  r.arrival_s = arrival_s; r.src = src; r.node = node; r.dst = dst; r.compute_s = compute_s;
  r.flags = flags; r.ifaces = ifaces;
  for (long b : bytes) { r.expect.push_back(uint64_t(b)); r.left += uint64_t(b); }
  r.got.assign(flags.size(), 0);
  r.path_done_s.assign(flags.size(), -1.0);
  uint32_t id = g.tasks.size();
  g.tasks.push_back(r);
  g.servers[node].order.push_back(id);
  Simulator::Schedule(Seconds(arrival_s), &StartTask, id);
  return id;
}

void AddProbe(uint32_t task, Ipv4Address dst, int flag, int iface, int slot) {
  TaskRec& r = g.tasks[task];
  r.probe_dst.push_back(dst); r.probe_flag.push_back(flag);
  r.probe_iface.push_back(iface); r.probe_slot.push_back(slot);
}

void InitRun(uint32_t num_nodes, bool dispatch_order, uint32_t probe_slots, uint32_t num_tasks,
             uint32_t packet_payload, uint32_t probe_payload, uint32_t flowlet_bytes) {
  g.servers.assign(num_nodes, Server());
  g.dispatch_order = dispatch_order;
  g.probe_slots = probe_slots;
  g.probe_sum_s.assign(size_t(num_tasks) * probe_slots, 0.0);
  g.probe_count.assign(size_t(num_tasks) * probe_slots, 0);
  g_packet_payload = packet_payload; g_probe_payload = probe_payload;
  g_flowlet_bytes = flowlet_bytes;
}

// ---------------------------------------------------------------- background
class BgSource {
 public:
  Ptr<Socket> socket;
  std::vector<Ipv4Address> dsts;
  std::vector<double> cum;  // cumulative destination probabilities
  Ptr<ExponentialRandomVariable> gap;
  Ptr<UniformRandomVariable> pick;
  uint32_t payload = 1472;

  void Send() {
    double u = pick->GetValue();
    size_t i = std::lower_bound(cum.begin(), cum.end(), u) - cum.begin();
    if (i >= dsts.size()) i = dsts.size() - 1;
    Ptr<Packet> p = Create<Packet>(payload);
    CpnTag t;
    t.path = BG_FLAG; t.kind = BG;
    p->AddPacketTag(t);
    socket->SendTo(p, 0, InetSocketAddress(dsts[i], PORT));
    g.bg_tx++;
    Simulator::Schedule(Seconds(gap->GetValue()), &BgSource::Send, this);
  }
};
std::vector<BgSource*> g_bg;

void AddBackground(uint32_t node, double packets_per_s, const std::vector<Ipv4Address>& dsts,
                   const std::vector<double>& weights, uint32_t payload, int64_t stream) {
  BgSource* b = new BgSource();
  b->socket = g_sockets[node];
  b->dsts = dsts;
  double total = 0;
  for (double w : weights) total += w;
  double acc = 0;
  for (double w : weights) { acc += w / total; b->cum.push_back(acc); }
  b->gap = CreateObject<ExponentialRandomVariable>();
  b->gap->SetAttribute("Mean", DoubleValue(1.0 / packets_per_s));
  b->gap->SetStream(stream);
  b->pick = CreateObject<UniformRandomVariable>();
  b->pick->SetStream(stream + 1);
  b->payload = payload;
  g_bg.push_back(b);
  Simulator::Schedule(Seconds(b->gap->GetValue()), &BgSource::Send, b);
}

// ---------------------------------------------------------------- results
std::vector<double> TaskTimes(uint32_t task) {  // data_done, start, end (absolute s; -1 unset)
  TaskRec& r = g.tasks[task];
  return {r.data_done_s, r.start_s, r.end_s};
}
std::vector<double> PathDone(uint32_t task) { return g.tasks[task].path_done_s; }
std::vector<double> ProbeMeans(uint32_t task) {  // mean one-way delay per slot, -1 if none
  std::vector<double> out(g.probe_slots, -1.0);
  for (uint32_t s = 0; s < g.probe_slots; ++s) {
    size_t i = size_t(task) * g.probe_slots + s;
    if (g.probe_count[i]) out[s] = g.probe_sum_s[i] / g.probe_count[i];
  }
  return out;
}
std::vector<double> Counters() {  // data_tx, bg_tx, bg_rx, stray_rx, task drops, bg drops,
                                 // failed TCP connects
  return {double(g.data_tx), double(g.bg_tx), double(g.bg_rx), double(g.stray_rx),
          double(g_drops.task_packets), double(g_drops.bg_packets),
          double(g.tcp_connect_failures)};
}

// ---------------------------------------------------------------- pinning test helpers
void SendTagged(Ptr<Socket> s, Ipv4Address dst, uint16_t port, int flag, int n, uint32_t size) {
  for (int i = 0; i < n; ++i) {
    Ptr<Packet> p = Create<Packet>(size);
    CpnTag t;
    t.path = flag;
    t.kind = BG;
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
