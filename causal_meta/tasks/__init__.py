"""Tasks: `make(name, **overrides)` builds a validated task; `register` adds your own.

Built in: prize_or_frog ([O] §2), bandit ([O] Remark 11), piecewise_bandit (its best arm moves
during the episode, [O] §3), padlock ([D] §4.1), and tabular (any task given as probability
tables, see `make_tabular`). A task of your own is a subclass of `Task` (tasks/base.py) or a
`make_tabular(...)`; `register(name, constructor)` makes it a `config.task.name`, whose
parameters (the constructor's keyword arguments) are set under `config.task.<name>`.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from causal_meta.registry import Registry
from causal_meta.tasks.base import Task
from causal_meta.tasks.padlock import Padlock, padlock
from causal_meta.tasks.tabular import (TabularTask, bandit, make_tabular, piecewise_bandit,
                                       prize_or_frog)

# name -> constructor(**params) -> Task. Read it through `names()`; change it through
# `register` and `unregister`. ("name" is not a task name: `config.task.name` names the task.)
REGISTRY = Registry("task", "tasks.register", reserved=("name",))


def register(name: str, constructor: Callable[..., Task], *, replace: bool = False) -> None:
  """Makes `make(name, **params)` call `constructor(**params)`, which returns a `Task`.

  The constructor's keyword parameters are the task's parameters: `config.task.name = name`
  builds `constructor(**config.task.<name>)` (each omitted one takes its default), and
  `make(name, bad=1)` names the parameters allowed. Validate the values in the constructor
  (tasks/base.py has `check_int`, `check_probability`, `check_distribution`).

  Raises:
    ValueError: `name` is not an identifier, is reserved, or is registered already (pass
      `replace=True` to rebind it, e.g. when a notebook cell runs again); `constructor` is not
      callable.
  """
  REGISTRY.add(name, constructor, replace)


def unregister(name: str) -> Callable[..., Task]:
  """Removes task `name`; returns its constructor. ValueError if it is not registered."""
  return REGISTRY.pop(REGISTRY.check(name))


def names() -> list[str]:
  """The registered task names, sorted: those `make` (and `config.task.name`) accept."""
  return REGISTRY.names()


def parameters(name: str) -> list[str]:
  """The parameter names `make(name, ...)` accepts (a constructor's `**kwargs` accepts any
  other name as well)."""
  return [p.name for p in inspect.signature(_constructor(name)).parameters.values()
          if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _constructor(name: str) -> Callable[..., Task]:
  return REGISTRY[REGISTRY.check(name)]


def make(name: str, **overrides: Any) -> Task:
  """Builds task `name` with its defaults replaced by `overrides`.

  Raises:
    ValueError: unknown name, unknown parameter, or an invalid value (the message names it);
      also a constructor that returns something other than a `Task`.
  """
  constructor = _constructor(name)
  allowed = parameters(name)
  takes_any = any(p.kind is p.VAR_KEYWORD
                  for p in inspect.signature(constructor).parameters.values())
  unknown = sorted(set(overrides) - set(allowed))
  if unknown and not takes_any:
    raise ValueError(f"task {name!r} has no parameter {unknown[0]!r}; allowed: "
                     f"{', '.join(allowed) if allowed else '(none)'}")
  task = constructor(**overrides)
  if not isinstance(task, Task):
    raise ValueError(f"task {name!r}: its constructor returned {type(task).__name__}, not a "
                     f"causal_meta.tasks.Task")
  return task


for _name, _constructor_fn in (("prize_or_frog", prize_or_frog), ("bandit", bandit),
                               ("piecewise_bandit", piecewise_bandit), ("padlock", padlock),
                               ("tabular", make_tabular)):
  register(_name, _constructor_fn)
del _name, _constructor_fn

__all__ = ["Task", "TabularTask", "Padlock", "make", "make_tabular", "bandit",
           "piecewise_bandit", "padlock", "prize_or_frog", "parameters", "register", "unregister",
           "names", "REGISTRY"]
