"""Trainers of the learned scheduler and their checkpoints."""

from cpnjax.train.actor_critic import TrainConfig, TrainState, make_train, make_trainer
from cpnjax.train.env import EnvConfig
from cpnjax.train.run import RunSpec, train_run

__all__ = [
    "EnvConfig",
    "RunSpec",
    "TrainConfig",
    "TrainState",
    "make_train",
    "make_trainer",
    "train_run",
]
