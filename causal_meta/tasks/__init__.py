"""Tasks: `make(name, **overrides)` builds a validated task.

Built in: prize_or_frog ([O] §2), bandit ([O] Remark 11), padlock ([D] §4.1), and tabular (any
task given as probability tables, see `make_tabular`).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from causal_meta.tasks.base import Task
from causal_meta.tasks.padlock import Padlock, padlock
from causal_meta.tasks.tabular import TabularTask, bandit, make_tabular, prize_or_frog

REGISTRY: dict[str, Callable[..., Task]] = {
    "prize_or_frog": prize_or_frog,
    "bandit": bandit,
    "padlock": padlock,
    "tabular": make_tabular,
}


def parameters(name: str) -> list[str]:
  """The parameter names `make(name, ...)` accepts."""
  return list(inspect.signature(_constructor(name)).parameters)


def _constructor(name: str) -> Callable[..., Task]:
  if name not in REGISTRY:
    raise ValueError(f"unknown task {name!r}; allowed: {', '.join(sorted(REGISTRY))}")
  return REGISTRY[name]


def make(name: str, **overrides: Any) -> Task:
  """Builds task `name` with its defaults replaced by `overrides`.

  Raises:
    ValueError: unknown name, unknown parameter, or an invalid value (the message names it).
  """
  constructor = _constructor(name)
  allowed = parameters(name)
  unknown = sorted(set(overrides) - set(allowed))
  if unknown:
    raise ValueError(f"task {name!r} has no parameter {unknown[0]!r}; allowed: "
                     f"{', '.join(allowed) if allowed else '(none)'}")
  return constructor(**overrides)


__all__ = ["Task", "TabularTask", "Padlock", "make", "make_tabular", "bandit", "padlock",
           "prize_or_frog", "parameters", "REGISTRY"]
