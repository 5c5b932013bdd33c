"""Gymnasium front ends: registration, check_env, the vector env's auto-reset and its JAX
arrays through gymnasium's own wrapper, a user topology."""

import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import JaxToNumpy

import cpnjax.envs
from cpnjax.envs.gymnasium import CPNGymEnv, make_vec


def test_every_shipped_topology_is_registered():
    ids = cpnjax.envs.GYMNASIUM_IDS
    assert "cpnjax/Abilene-v0" in ids and len(ids) == len(cpnjax.envs.ENV_NAMES)
    assert all(i in gym.registry for i in ids)


def test_single_env_passes_the_gymnasium_checker():
    env = gym.make("cpnjax/Abilene-v0", episode_tasks=20)
    check_env(env.unwrapped)  # raises on any failed check
    obs, _ = env.reset(seed=3)
    again, _ = env.reset(seed=3)
    np.testing.assert_array_equal(obs, again)
    steps, terminated = 0, False
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
        assert isinstance(reward, float) and np.isfinite(reward) and not truncated
        assert obs.dtype == np.float32 and env.observation_space.contains(obs)
        assert info["response_s"] > 0
    assert steps == 20


def test_vector_env_resets_in_the_same_step_and_converts_with_gymnasium_wrappers():
    venv = gym.make_vec(
        "cpnjax/Abilene-v0", num_envs=4, vectorization_mode="vector_entry_point", episode_tasks=5
    )
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    venv = JaxToNumpy(venv)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (4, *venv.single_observation_space.shape)
    time_left = venv.single_observation_space.shape[0] - 1  # the flat observation's last entry
    for _ in range(5):
        obs, reward, terminated, truncated, info = venv.step(venv.action_space.sample())
        assert isinstance(obs, np.ndarray) and np.isfinite(reward).all()
    assert terminated.all() and not truncated.any() and info["_final_obs"].all()
    np.testing.assert_allclose(obs[:, time_left], 1.0)  # a new episode's first observation
    np.testing.assert_allclose(info["final_obs"][:, time_left], 0.0)  # the old one's last
    obs, *_ = venv.step(venv.action_space.sample())
    np.testing.assert_allclose(obs[:, time_left], 0.8)


def test_a_user_topology_through_make_vec(tmp_path):
    edges = []
    for a, b in [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)]:
        for s, d in ((a, b), (b, a)):
            edges.append({"src": s, "dst": d, "capacity_mbps": 1000, "prop_delay_ms": 2.0})
    path = tmp_path / "ring.json"
    path.write_text(json.dumps({"name": "ring", "num_nodes": 4, "edges": edges}))
    venv = make_vec(str(path), num_envs=2, num_candidates=2, episode_tasks=3)
    obs, _ = venv.reset(seed=1)
    obs, reward, *_ = venv.step(venv.action_space.sample())
    assert np.isfinite(np.asarray(reward)).all() and obs.shape[0] == 2
    with pytest.raises(ValueError, match="render"):
        CPNGymEnv(str(path), render_mode="human")
