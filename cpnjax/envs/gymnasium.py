"""Gymnasium front ends of the flat `CPNEnv`, for PyTorch and other non-JAX trainers.

* `CPNGymEnv`: one environment, a `gymnasium.Env` with flat Box spaces that returns NumPy
  (float32 observations, float rewards, bool flags), so it passes
  `gymnasium.utils.env_checker.check_env`. No auto-reset: call `reset` after `terminated`.
* `CPNVectorEnv`: E environments stepped by one jitted, vmapped call; returns JAX arrays
  (`metadata["jax"]`), so wrap it in `gymnasium.wrappers.vector.JaxToTorch` (or `JaxToNumpy`).
  It resets a finished environment in the same step (`metadata["autoreset_mode"]` is
  `AutoresetMode.SAME_STEP`): the returned observation is the new episode's first, and the
  finished episode's last is in `info["final_obs"]` where `info["_final_obs"]`.

`import cpnjax.envs` registers `cpnjax/<Name>-v0` for every shipped topology (`ENV_NAMES`), so
`gymnasium.make("cpnjax/Abilene-v0")` and `gymnasium.make_vec("cpnjax/Abilene-v0", num_envs=E,
vectorization_mode="vector_entry_point")` work; options (`cpnjax.envs.make`'s: `seed` is the
scenario's, `load`, `episode_tasks`, ...) pass as keyword arguments. A topology of your own:
`cpnjax.envs.gymnasium.make_vec(path, num_envs)` or `CPNGymEnv(path)`.

Host-side wrappers around jitted functions: every call is one device round trip.
"""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from cpnjax.envs.cpn_env import INFO_KEYS, CPNEnv
from cpnjax.envs.make import ENV_NAMES, make


def gym_spaces(env: CPNEnv, params) -> tuple[gym.spaces.Box, gym.spaces.Box]:
    """(observation space, action space) of the flat env as Gymnasium Boxes."""
    obs, act = env.observation_space(params), env.action_space(params)
    return (
        gym.spaces.Box(float(obs.low), float(obs.high), obs.shape, np.float32),
        gym.spaces.Box(float(act.low), float(act.high), act.shape, np.float32),
    )


class CPNGymEnv(gym.Env):
    """One flat CPN environment (see the module). kwargs: `cpnjax.envs.make`'s options."""

    metadata = {"render_modes": [], "jax": False}

    def __init__(self, topology: str = "abilene", render_mode: str | None = None, **options):
        if render_mode is not None:
            raise ValueError(f"cpnjax environments do not render (render_mode={render_mode!r})")
        self.env, self.params = make(topology, flat=True, **options)
        self.observation_space, self.action_space = gym_spaces(self.env, self.params)
        self._reset = jax.jit(self.env.reset)
        self._step = jax.jit(self._step_env)
        self._key = None
        self._state = None

    def _step_env(self, key, state, action, params):
        obs, state, reward, terminated, info = self.env.step_env(key, state, action, params)
        return obs, state, reward, terminated, {k: info[k] for k in INFO_KEYS}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, self._state = self._reset(next_reset_key(self, seed), self.params)
        return np.asarray(obs), {}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        self._key, k = jax.random.split(self._key)
        action = jnp.asarray(np.asarray(action, np.float32))
        obs, self._state, reward, terminated, info = self._step(k, self._state, action, self.params)
        info = {k: np.asarray(v).item() for k, v in info.items()}
        return np.asarray(obs), float(reward), bool(terminated), False, info


class CPNVectorEnv(VectorEnv):
    """E flat CPN environments in one jitted call (see the module)."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": [], "jax": True}

    def __init__(
        self, num_envs: int, topology: str = "abilene", render_mode: str | None = None, **options
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if render_mode is not None:
            raise ValueError(f"cpnjax environments do not render (render_mode={render_mode!r})")
        self.env, self.params = make(topology, flat=True, **options)
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = gym_spaces(self.env, self.params)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.render_mode = None
        self._reset = jax.jit(jax.vmap(self.env.reset, in_axes=(0, None)))
        self._step = jax.jit(self._step_all, donate_argnums=1)  # the state is updated in place
        self._key = None
        self._state = None

    def _step_all(self, key, state, action, params):
        keys = jax.random.split(key, self.num_envs)
        obs, state, reward, terminated, truncated, info = jax.vmap(
            self.env.step, in_axes=(0, 0, 0, None)
        )(keys, state, action, params)
        done = terminated | truncated
        out = {k: info[k] for k in INFO_KEYS}
        out |= {"final_obs": info["final_observation"], "_final_obs": done}
        return obs, state, reward, terminated, truncated, out

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        keys = jax.random.split(next_reset_key(self, seed), self.num_envs)
        obs, self._state = self._reset(keys, self.params)
        return obs, {}

    def step(self, actions):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        self._key, k = jax.random.split(self._key)
        actions = jnp.asarray(actions, jnp.float32)
        obs, self._state, reward, terminated, truncated, info = self._step(
            k, self._state, actions, self.params
        )
        return obs, reward, terminated, truncated, info


def next_reset_key(env: CPNGymEnv | CPNVectorEnv, seed: int | None) -> jax.Array:
    """The key of a reset: from `seed` when one is given (or, on the first reset, from the
    env's `np_random`), else the next split of the env's key chain."""
    if seed is not None or env._key is None:
        env._key = jax.random.key(int(env.np_random.integers(2**31)) if seed is None else seed)
    env._key, key = jax.random.split(env._key)
    return key


def make_vec(topology: str, num_envs: int, **options) -> CPNVectorEnv:
    """E environments on a shipped topology or a topology JSON of your own."""
    return CPNVectorEnv(num_envs, topology, **options)


def register_all() -> list[str]:
    """Register `cpnjax/<Name>-v0` for every shipped topology (idempotent); returns the ids."""
    ids = []
    for key, name in ENV_NAMES.items():
        env_id = f"cpnjax/{name}-v0"
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point="cpnjax.envs.gymnasium:CPNGymEnv",
                vector_entry_point="cpnjax.envs.gymnasium:CPNVectorEnv",
                kwargs={"topology": key},
            )
        ids.append(env_id)
    return ids
