"""The learned scheduler's networks and action distribution."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpnjax.network import load_topology
from cpnjax.policies import distributions
from cpnjax.policies.features import GraphFeatures, graph_features
from cpnjax.policies.learned import learned_policy
from cpnjax.policies.networks import ActorCritic, scheduling_graph
from cpnjax.scenario import ScenarioConfig, make_scenario
from cpnjax.sim import SimConfig, arrive, make_params, observe, reset, split_is_valid, task_arrays


@pytest.fixture(scope="module")
def abilene_obs():
    """Observations of a 30-task Abilene stream whose only access point has degree 1."""
    topo = load_topology("abilene")
    degree = np.bincount(topo.src, minlength=topo.num_nodes)
    leaf = int(np.flatnonzero(degree == 1)[0])
    cfg = dataclasses.replace(ScenarioConfig.test(), num_tasks=30, access_points=(leaf,), load=2.0)
    sc = make_scenario(cfg, 0)
    params = make_params(sc)
    tasks = task_arrays(sc.tasks)
    state = reset(params, jax.random.key(0))
    obs = []
    for i in range(30):
        t = jax.tree.map(lambda x, i=i: x[i], tasks)
        state = arrive(state, t)
        o = observe(params, state, t, SimConfig())
        obs.append(o)
    return obs


def pad(f: GraphFeatures, extra_candidates: int, extra_paths: int) -> GraphFeatures:
    """The same features with masked candidates and path slots appended (garbage values)."""
    n, k = f.path_mask.shape

    def grow(x, fill, cand_axis_only=False):
        width = [(0, extra_candidates)] + ([] if cand_axis_only else [(0, extra_paths)])
        width += [(0, 0)] * (x.ndim - len(width))
        return jnp.pad(x, width, constant_values=fill)

    return GraphFeatures(
        candidate=grow(f.candidate, 7.0, cand_axis_only=True),
        path=grow(f.path, -3.0),
        cand_mask=grow(f.cand_mask, False, cand_axis_only=True),
        path_mask=grow(f.path_mask, False),
        prior_split=grow(f.prior_split, 0.0),
    )


def test_padded_vertices_change_no_real_output(abilene_obs):
    net = ActorCritic(encoder="syncgnn", rounds=2)
    f = graph_features(abilene_obs[3])
    variables = net.init(jax.random.key(0), f)
    out = net.apply(variables, f)
    padded = net.apply(variables, pad(f, 2, 1))
    n, k = f.path_mask.shape
    real = np.asarray(f.cand_mask)
    np.testing.assert_allclose(padded.node_logits[:n][real], out.node_logits[real], rtol=1e-5)
    mask = np.asarray(f.path_mask)
    np.testing.assert_allclose(padded.split_mean[:n, :k][mask], out.split_mean[mask], rtol=1e-5)
    np.testing.assert_allclose(padded.value, out.value, rtol=1e-5)
    assert (np.asarray(padded.node_logits[n:]) <= -1e8).all()


def test_scheduling_graph_routes_missing_paths_to_the_padding_vertex(abilene_obs):
    f = graph_features(abilene_obs[0])
    n, k = f.path_mask.shape
    g = scheduling_graph(jnp.ones((n, 4)), jnp.ones((n, k, 4)), f)
    real = np.asarray(f.path_mask).reshape(-1)
    assert g.nodes.shape == (n + n * k + 1, 4)
    assert (np.asarray(g.receivers)[~real] == n + n * k).all()
    np.testing.assert_array_equal(np.asarray(g.receivers)[real], np.repeat(np.arange(n), k)[real])
    assert int(g.n_edge[0]) == real.sum()


@pytest.mark.parametrize("encoder", ["syncgnn", "mlp"])
def test_every_sampled_and_greedy_action_is_valid(abilene_obs, encoder):
    net = ActorCritic(encoder=encoder, init_log_std=1.0)  # wide noise: many cut shares
    variables = net.init(jax.random.key(1), graph_features(abilene_obs[0]))

    @jax.jit
    def actions(obs, key):
        out = net.apply(variables, graph_features(obs))
        nodes, zs = jax.vmap(lambda k: distributions.sample(out, k))(jax.random.split(key, 64))
        acts = jax.vmap(lambda n, z: distributions.to_action(out, n, z))(nodes, zs)
        greedy = learned_policy(net, variables)(obs)
        return acts, greedy

    for i, obs in enumerate(abilene_obs):
        acts, greedy = actions(obs, jax.random.key(i))
        for node, split in [
            (greedy.node_slot, greedy.split),
            *zip(acts.node_slot, acts.split, strict=True),
        ]:
            assert bool(obs.cand_mask[node])
            assert bool(split_is_valid(split, obs.path_mask[node]))
    zeros = np.asarray(acts.split)[np.asarray(obs.path_mask)[np.asarray(acts.node_slot)]] == 0.0
    assert zeros.any()  # the cut does put exact zeros on existing paths


def test_split_log_density_matches_a_hand_computation():
    out_kwargs = dict(
        node_logits=jnp.array([1.0, 2.0, -1e9]),
        split_mean=jnp.array([[0.0, 0.0, 0.0], [0.5, -1.0, 0.0], [0.0, 0.0, 0.0]]),
        split_log_std=jnp.log(0.5),
        value=jnp.zeros(()),
        cand_mask=jnp.array([True, True, False]),
        path_mask=jnp.array([[True, True, True], [True, True, False], [False] * 3]),
    )
    from cpnjax.policies.networks import PolicyOutput

    out = PolicyOutput(**out_kwargs)
    z = jnp.array([1.0, -2.0, 0.0])
    # node 1: p = e^2 / (e^1 + e^2); two existing paths, N(1; 0.5, 0.5) and N(-2; -1, 0.5)
    log_p_node = 2.0 - np.log(np.e + np.e**2)
    gauss = lambda x, m, s: -0.5 * ((x - m) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)  # noqa: E731
    expected = log_p_node + gauss(1.0, 0.5, 0.5) + gauss(-2.0, -1.0, 0.5)
    assert float(distributions.log_prob(out, jnp.int32(1), z)) == pytest.approx(expected, rel=1e-5)
    split = distributions.split_of_logits(z, out.path_mask[1])
    e = np.exp([1.0, -2.0])
    share = e / e.sum()  # 0.953, 0.047: the second is below the cut
    assert share[1] < distributions.SPLIT_CUT
    np.testing.assert_allclose(np.asarray(split), [1.0, 0.0, 0.0])
