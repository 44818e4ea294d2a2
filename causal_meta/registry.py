"""Name -> constructor tables that configs name: the tasks' (`tasks.register`) and the
agents' (`agents.register`). A dict with the checks both need, written once."""

from __future__ import annotations

from typing import Callable, Sequence


class Registry(dict):
  """{name: constructor}. `noun` ("task", "agent kind") and `caller` ("tasks.register") name
  it in errors; `reserved` names cannot be registered; `names()` is sorted if `sort`, else in
  registration order (built-ins first)."""

  def __init__(self, noun: str, caller: str, reserved: Sequence[str] = (), sort: bool = True):
    super().__init__()
    self.noun, self.caller, self.reserved, self.sort = noun, caller, tuple(reserved), sort

  def add(self, name: str, constructor: Callable, replace: bool = False) -> None:
    """ValueError (one line) if `name` is not an identifier, is reserved or is registered
    already (unless `replace`), or `constructor` is not callable."""
    if not isinstance(name, str) or not name.isidentifier() or name in self.reserved:
      other = (f" other than {', '.join(map(repr, self.reserved))} (a config field)"
               if self.reserved else "")
      raise ValueError(f"{self.caller}: name must be an identifier{other}, got {name!r}")
    if not callable(constructor):
      raise ValueError(f"{self.caller}: {name!r} must be given a callable, got {constructor!r}")
    if name in self and not replace:
      raise ValueError(f"{self.caller}: {self.noun} {name!r} is registered already; pass "
                       f"replace=True to replace it")
    self[name] = constructor

  def names(self) -> list[str]:
    return sorted(self) if self.sort else list(self)

  def check(self, name: str) -> str:
    """`name`, or ValueError 'unknown NOUN ...; allowed: ...'."""
    if name not in self:
      raise ValueError(f"unknown {self.noun} {name!r}; allowed: {', '.join(self.names())}")
    return name
