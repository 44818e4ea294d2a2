"""Exact tabular analysis of goal-conditioned policies ([D] §3, [K] §4–5), of counterfactual
planning agents ([H]) and of [H]'s graphical world models (`world_models`).

Finite-horizon MDPs with discrete states and actions; everything is computed exactly by backward
recursion in NumPy float64. Policies are [S, A] (stationary) or [T, S, A] (time-indexed) arrays.
See docs/tabular.md for the reproduced results: `python -m launch.reproduce NAME`, whose runners
are in `causal_meta.reproduce.tabular`.
"""

from causal_meta.tabular import boltzmann, examples, planning, world_models
from causal_meta.tabular.examples import (ConfoundedTask, card_game, example3, mountain_race,
                                          random_mdp, random_policy, random_tree_mdp, stock_trader)
from causal_meta.tabular.mdp import (TabularMDP, as_time_indexed, occupancy, reachable,
                                     stationary, tree_mdp, uniform_policy)
from causal_meta.tabular.operators import (boltzmann_incoherence, delusion, f_incoherence,
                                           f_soft_policy, folded_cumulative_sequence,
                                           folded_sequence, goal_condition, incoherence,
                                           kl_divergence, limit_policy, optimal_return,
                                           optimal_values, policy_return, retrain, soft_values,
                                           softmax_f, temperature_policy, trajectory_kl)

__all__ = [
    "ConfoundedTask", "TabularMDP", "as_time_indexed", "boltzmann", "boltzmann_incoherence",
    "card_game",
    "delusion", "example3", "examples", "f_incoherence", "f_soft_policy",
    "folded_cumulative_sequence", "folded_sequence", "goal_condition", "incoherence",
    "kl_divergence", "limit_policy", "mountain_race", "occupancy", "optimal_return",
    "optimal_values", "planning", "policy_return", "random_mdp", "random_policy",
    "random_tree_mdp", "reachable", "retrain", "soft_values", "softmax_f", "stationary",
    "stock_trader", "temperature_policy", "trajectory_kl", "tree_mdp", "uniform_policy",
    "world_models",
]
