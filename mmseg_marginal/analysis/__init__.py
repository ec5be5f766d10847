"""Analysis tools: the loss decomposition terms of Liu et al."""

from .decomposition import loss_decomposition

__all__ = ["loss_decomposition"]
