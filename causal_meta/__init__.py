"""causal_meta: sequence models that act without deluding themselves.

Braided rollouts, factual and counterfactual teaching, and the exact Bayes-optimal oracle
(Ortega et al., "Shaking the foundations", and companions). See README.md.
"""

# The package's one version string: setup.cfg reads it (`attr:`), CITATION.cff repeats it.
__version__ = "0.1.0"

from causal_meta import oracle, rollout, tasks
from causal_meta.train import train_and_evaluate

__all__ = ["oracle", "rollout", "tasks", "train_and_evaluate"]
