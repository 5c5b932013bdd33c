import json

import numpy as np
import pytest

from cpnjax.network import (
    SHIPPED_TOPOLOGIES,
    TopologyError,
    build_candidate_table,
    k_shortest_paths,
    load_topology,
    route_traffic_matrix,
    topology_from_dict,
)


def ring(n=4, **edge_fields):
    edges = []
    for u in range(n):
        v = (u + 1) % n
        edges += [{"src": u, "dst": v, **edge_fields}, {"src": v, "dst": u, **edge_fields}]
    return {"name": "ring", "edges": edges}


@pytest.mark.parametrize("name", SHIPPED_TOPOLOGIES)
def test_every_shipped_topology_loads_with_positive_capacity_and_delay(name):
    topo = load_topology(name)
    assert topo.num_links > 0
    assert (topo.capacity_bps > 0).all() and np.isfinite(topo.capacity_bps).all()
    assert (topo.prop_delay_s >= 0).all()


def test_unit_mapping():
    abilene = load_topology("abilene")
    assert sorted(set(abilene.capacity_bps / 1e9)) == pytest.approx([2.48, 9.92])
    assert abilene.prop_delay_s[0] == pytest.approx(0.662e-3)
    assert load_topology("tiscali").capacity_bps.max() == pytest.approx(500 * 20e6)
    assert load_topology("b4").capacity_bps.max() == pytest.approx(5000 * 10e6)
    assert load_topology("ebone").prop_delay_s == pytest.approx(2e-3)  # no geography: default
    spec = ring(capacity=10, dist_km=400.0)
    spec["capacity_unit"] = "Gbps"
    topo = topology_from_dict(spec)
    assert topo.capacity_bps == pytest.approx(1e10)
    assert topo.prop_delay_s == pytest.approx(2e-3)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"edges": []}, "no 'edges'"),
        (ring(capacity_mbps=0), "positive"),
        (ring(capacity_mbps=-5), "positive"),
        (ring(capacity=5), "capacity_unit"),
        (ring(), "no capacity"),
        (
            {
                "edges": [
                    {"src": 0, "dst": 1, "capacity_bps": 1},
                    {"src": 2, "dst": 3, "capacity_bps": 1},
                ]
            },
            "disconnected",
        ),
        ({"edges": [{"src": 0, "dst": 0, "capacity_bps": 1}]}, "self-loop"),
        ({"edges": [{"src": "a", "dst": 1, "capacity_bps": 1}]}, "integers"),
    ],
)
def test_bad_topologies_are_rejected_with_a_clear_message(spec, message):
    with pytest.raises(TopologyError, match=message):
        topology_from_dict(spec)


def test_unknown_name_and_malformed_file(tmp_path):
    with pytest.raises(TopologyError, match="unknown topology"):
        load_topology("atlantis")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TopologyError, match="not valid JSON"):
        load_topology(bad)


def test_k_paths_masks_missing_paths_at_a_degree_one_node():
    topo = load_topology("abilene")
    graph = topo.graph()
    degree_one = [v for v in range(topo.num_nodes) if graph.out_degree(v) == 1]
    assert degree_one, "Abilene has a degree-1 node"
    leaf = degree_one[0]
    paths = k_shortest_paths(graph, leaf, (leaf + 3) % 12, 3)
    assert 1 <= len(paths) <= 3
    node_class = np.zeros(topo.num_nodes, np.int64)
    node_class[leaf] = -1
    table = build_candidate_table(
        topo, np.array([leaf]), node_class, 1, num_candidates=11, num_paths=3
    )
    assert table.node_mask.all()
    assert table.path_mask[..., 0].all()  # every candidate has its shortest path
    # a path exists iff it has at least one hop, and all hops are real links of that path
    assert (table.hop_mask.any(-1) == table.path_mask).all()
    for a, c, i, p in zip(*np.nonzero(table.path_mask), strict=True):
        links = table.path_links[a, c, i, p][table.hop_mask[a, c, i, p]]
        assert topo.src[links[0]] == leaf and topo.dst[links[-1]] == table.node[a, c, i]
        assert (topo.dst[links[:-1]] == topo.src[links[1:]]).all()


def test_candidates_are_the_nearest_of_their_class_and_filled_from_others():
    topo = topology_from_dict(ring(6, capacity_bps=1e9))
    node_class = np.array([-1, 0, 1, 1, 1, 0])  # class 0 at nodes 1 and 5, both 1 hop from 0
    table = build_candidate_table(topo, np.array([0]), node_class, 2, num_candidates=3, num_paths=2)
    assert sorted(table.node[0, 0, :2]) == [1, 5]
    assert table.node[0, 0, 2] in (2, 4)  # filled with the nearest node of another class
    assert list(table.node[0, 1]) in ([2, 4, 3], [4, 2, 3])


def test_routing_conserves_demand_times_hops():
    topo = topology_from_dict(ring(5, capacity_bps=1e9))
    demand = np.zeros((5, 5))
    demand[0, 2] = 3.0  # two hops either way round the ring
    load = route_traffic_matrix(topo, demand)
    assert load.sum() == pytest.approx(6.0)
    assert (np.sort(load)[-2:] == 3.0).all()


def test_shipped_file_equals_its_name(tmp_path):
    from importlib import resources

    text = resources.files("cpnjax.data").joinpath("topologies/abilene.json").read_text()
    path = tmp_path / "mine.json"
    path.write_text(text)
    a, b = load_topology("abilene"), load_topology(path)
    assert (a.capacity_bps == b.capacity_bps).all() and json.loads(text)["name"] == a.name


def test_shortest_path_links_carry_exactly_the_routed_background():
    from cpnjax.network import shortest_path_links
    from cpnjax.scenario import ScenarioConfig, make_scenario

    for name in ("abilene", "tiscali"):
        scenario = make_scenario(ScenarioConfig(topology=name), seed=3)
        demand = scenario.background_demand_bps
        pairs = list(zip(*np.nonzero(demand), strict=True))
        load = np.zeros(scenario.topology.num_links)
        for (s, d), links in zip(pairs, shortest_path_links(scenario.topology, pairs), strict=True):
            assert links, f"{name}: no route {s}->{d}"
            assert scenario.topology.src[links[0]] == s and scenario.topology.dst[links[-1]] == d
            load[links] += demand[s, d]
        np.testing.assert_allclose(load, scenario.background_bps, rtol=1e-9, atol=1e-3)
