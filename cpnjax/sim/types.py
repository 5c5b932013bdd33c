"""Pytrees of the simulator: static params, dynamic state, one task, one action, one observation.

Shapes: L links, V nodes, D deployed device models, C device classes, A access points,
N candidates, K paths per candidate, H hops per path (padded), T real hops of a candidate's
paths (padded to the most of any candidate), P lanes of Λ hops that hold a task's N x K paths for
its probes, R architectures, M jobs remembered per link and server.
"""

from __future__ import annotations

import dataclasses

import jax
from flax import struct

from cpnjax.sim.dynamics import LinkRows, ProbeLanes, TaskHops


@dataclasses.dataclass(frozen=True)
class SimConfig:
    """Static (compile-time) switches of the simulator.

    smooth_temp_s: None for exact FIFO latency (hard max). A temperature in seconds makes every
      max a log-sum-exp with that temperature and every "is this path used" a soft gate, so that
      response latency is smooth in the split ratios (differentiable mode).
    gate_eps: in smooth mode, a path with split s counts with weight s / (s + gate_eps).
    probe_noise: draw the probes' background waits at random (else use their mean).
    background_noise: draw each chunk's wait behind background packets at each hop at random,
      as one packet's M/D/1 wait: 0 with probability 1 - u, else exponential with mean w / u
      (mean w, the default's constant). Off by default: see results/ns3_fidelity_noise.
    coupled_chunks: a task's paths also queue with the chunks of its later paths on the links
      they share (a second sweep in `dynamics.send_chunks`): closer to NS-3 (every low and mid
      cell of the fidelity matrix within 10% at p99, results/ns3_fidelity_coupled) at 1.5-2.7x
      fewer task-steps/s (results/bench_sim_coupled.md). Off by default: see the README.
    per_path_send: the order in which `dynamics.send_chunks` sends a task's paths (the same
      numbers): True path by path over the padded (K, H) grid, fewer and larger steps, faster
      with few environments; False one scan over the packed real hops, faster with many where
      packing leaves hops out. None (default): `make_batched_rollout` and `cpnjax evaluate` send
      path by path with at most `wrappers.FEW_ENVS` environments per device
      (`wrappers.send_order_for`); otherwise packed unless packing leaves no hop out (the params
      of `make_params(..., all_links=True)`). results/bench_sim_send_order.
    """

    smooth_temp_s: float | None = None
    gate_eps: float = 1e-3
    probe_noise: bool = True
    background_noise: bool = False
    coupled_chunks: bool = False
    per_path_send: bool | None = None


@struct.dataclass
class SimParams:
    """Static arrays of one scenario. The simulator's L links are the topology's links that
    some candidate path crosses (`link_ids`); `path_links` indexes them."""

    link_ids: jax.Array  # (L,) int32 the topology's id of each simulated link
    link_capacity_bps: jax.Array  # (L,) line rate
    link_rate_bps: jax.Array  # (L,) rate left to task bytes: capacity * (1 - background util)
    link_prop_s: jax.Array  # (L,) propagation delay
    link_bg_util: jax.Array  # (L,) background utilisation in [0, 1)
    link_bg_wait_s: jax.Array  # (L,) mean FIFO wait of a packet behind background packets
    node_device: jax.Array  # (V,) int32 column of the device tables, -1: no compute
    cand_node: jax.Array  # (A, C, N) int32 candidate node ids
    cand_mask: jax.Array  # (A, C, N) bool
    path_links: jax.Array  # (A, C, N, K, H) int32 simulated link (index into link_*) per hop
    hop_mask: jax.Array  # (A, C, N, K, H) bool
    task_hops: TaskHops  # (A, C, N, T) each candidate's real hops packed (`dynamics.task_hops`)
    probe_lanes: ProbeLanes  # (A, C, P, Λ) the candidates' paths packed for the probes
    path_mask: jax.Array  # (A, C, N, K) bool
    cand_device: jax.Array  # (A, C, N) int32 device column of each candidate
    # The link constants gathered once per candidate hop (padded hops: capacity/rate 1, rest 0),
    # so that the hot path slices blocks instead of gathering single links.
    hop_capacity_bps: jax.Array  # (A, C, N, K, H)
    hop_rate_bps: jax.Array  # (A, C, N, K, H)
    hop_prop_s: jax.Array  # (A, C, N, K, H)
    hop_bg_wait_s: jax.Array  # (A, C, N, K, H)
    hop_bg_util: jax.Array  # (A, C, N, K, H)
    true_compute_s: jax.Array  # (R, D) measured latency (ground truth)
    pred_compute_s: jax.Array  # (R, D) what the controller predicts
    packet_bytes: jax.Array  # () data packet size
    probe_bytes: jax.Array  # () probe packet size

    @property
    def num_links(self) -> int:
        return self.link_capacity_bps.shape[-1]

    @property
    def num_nodes(self) -> int:
        return self.node_device.shape[-1]


@struct.dataclass
class SimState:
    """M jobs remembered on every link and compute server (see `dynamics`); a slot with 0 work
    is empty. A row's times are relative to the last time it was written: subtract its age to
    get them relative to now (`arrive` only ages the rows, O(L + V), instead of moving every
    time)."""

    links: LinkRows  # (L, M) the jobs on each link and the row caches
    node_job_arrival_s: jax.Array  # (V, M) when each job's data is all in at the server
    node_job_compute_s: jax.Array  # (V, M) its compute latency
    link_age_s: jax.Array  # (L,) time since each link's row was written
    node_age_s: jax.Array  # (V,) time since each server's row was written
    time_s: jax.Array  # () clock (for reporting only; the dynamics use relative times)
    key: jax.Array  # PRNG key for probe noise


@struct.dataclass
class Task:
    interarrival_s: jax.Array  # () time since the previous task
    access_point: jax.Array  # () int32 index into the access points
    arch: jax.Array  # () int32 NB201 architecture
    size_bytes: jax.Array  # () input bytes to move


@struct.dataclass
class Action:
    node_slot: jax.Array  # () int32 which of the N candidates computes the task
    split: jax.Array  # (K,) split ratios over that candidate's paths, on the simplex


@struct.dataclass
class Obs:
    """What a controller can know when the task arrives (no ground truth)."""

    size_bytes: jax.Array  # ()
    cand_mask: jax.Array  # (N,) bool
    pred_compute_s: jax.Array  # (N,) predicted compute latency on each candidate
    compute_wait_s: jax.Array  # (N,) time until each candidate's server has done its reserved work
    path_mask: jax.Array  # (N, K) bool
    path_delay_s: jax.Array  # (N, K) mean one-way delay of 3 back-to-back probes
    path_free_bps: jax.Array  # (N, K) bottleneck free capacity (line rate minus background)
    path_hops: jax.Array  # (N, K) hop count
    hop_links: jax.Array  # (N, K, H) int32 link id per hop (the controller knows its routes)
    hop_mask: jax.Array  # (N, K, H) bool
    hop_capacity_bps: jax.Array  # (N, K, H) line rate of each hop
    hop_bg_util: jax.Array  # (N, K, H) measured background utilisation of each hop
    hop_backlog_s: jax.Array  # (N, K, H) time until each hop has sent its reserved task data


@struct.dataclass
class StepInfo:
    """Per-task outcome; times in seconds. The decision is recorded so that it can be replayed
    (e.g. packet by packet in NS-3)."""

    node: jax.Array  # () int32 compute node
    node_slot: jax.Array  # () int32 the action's candidate slot
    split: jax.Array  # (K,) the split applied (0 on missing paths)
    path_transmission_s: jax.Array  # (K,) last byte delivered on each path (0 if unused)
    transmission_s: jax.Array  # () max over used paths
    wait_s: jax.Array  # () FIFO wait at the compute node
    compute_s: jax.Array  # () compute latency on the node's device
    response_s: jax.Array  # () transmission + wait + compute
