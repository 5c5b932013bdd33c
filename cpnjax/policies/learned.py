"""A trained actor as a policy: Obs -> Action, the mode of each head (deterministic)."""

from __future__ import annotations

from cpnjax.policies import distributions
from cpnjax.policies.features import graph_features
from cpnjax.policies.networks import ActorCritic
from cpnjax.sim import Action, Obs, Policy


def learned_policy(network: ActorCritic, params, cut: float = distributions.SPLIT_CUT) -> Policy:
    """The deterministic policy of `network` with `params` (a pytree; may be traced)."""

    def policy(obs: Obs) -> Action:
        out = network.apply(params, graph_features(obs))
        node, z = distributions.mode(out)
        return distributions.to_action(out, node, z, cut)

    return policy
