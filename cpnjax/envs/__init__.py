"""cpnjax in the JAX RL ecosystem: `CPNEnv`, a gymnax environment (`make`), and its Gymnasium
registration (`cpnjax/<Name>-v0` for every shipped topology, when gymnasium is installed).

Needs the `ecosystem` extra: `pip install "cpnjax[ecosystem]"`.
"""

try:
    import gymnax  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError(
        "cpnjax.envs needs gymnax (and six, which gymnax 1.0.1 imports without declaring): "
        'pip install "cpnjax[ecosystem]"'
    ) from e

from cpnjax.envs.codec import SPLIT_LOGIT_SCALE, decode_dict, decode_flat, encode, flatten
from cpnjax.envs.cpn_env import INFO_KEYS, CPNEnv, rollout_stream
from cpnjax.envs.make import ENV_NAMES, env_params, make
from cpnjax.envs.types import EnvParams, EnvState

try:
    import gymnasium as _gymnasium  # noqa: F401
except ImportError:  # pragma: no cover - gymnasium is optional beside gymnax
    GYMNASIUM_IDS: list[str] = []
else:
    from cpnjax.envs.gymnasium import register_all

    GYMNASIUM_IDS = register_all()

__all__ = [
    "ENV_NAMES",
    "GYMNASIUM_IDS",
    "INFO_KEYS",
    "SPLIT_LOGIT_SCALE",
    "CPNEnv",
    "EnvParams",
    "EnvState",
    "decode_dict",
    "decode_flat",
    "encode",
    "env_params",
    "flatten",
    "make",
    "rollout_stream",
]
