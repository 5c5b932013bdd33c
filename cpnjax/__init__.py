"""cpnjax: a differentiable JAX simulator of a computing power network (CPN)."""

__version__ = "0.1.0"
