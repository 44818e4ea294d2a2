"""Graphical world models and their counterfactual worlds, computed exactly ([H]).

A world model ([H] "Graphical World Models") is a diagram of random variables, each annotated
with a structural function of its parents. Here every variable has a finite domain and its
annotation is a conditional table P(node | parents); a deterministic function such as
sum(a, b) = a + b is a table of point masses. The joint distribution is the product of the
tables, held as one NumPy float64 array with one axis per node, so P(event) and E(f) are exact
sums over it (the "formal semantics" that replaces running the simulator).

A counterfactual world c is drawn from a factual diagram f by changing some annotations
(`WorldModel.replace`). `twin` puts both worlds on one probability space, so that expressions
such as P(S_c > S_f) mean something: a node whose annotation and parents are unchanged in c is
the same random variable in both worlds (its random draw is made once), and a node downstream of
a change is recomputed in c from its c-parents. For a deterministic node this is the usual
twin-network construction with shared exogenous noise; a chance node downstream of a change
draws afresh in c (its noise is not shared). `twin(..., share=False)` makes the two worlds
independent instead, for comparison.

Shapes: a model with n nodes has a joint of shape [|dom(node_1)|, …, |dom(node_n)|], axes in the
model's (topological) node order.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable, Mapping, Sequence

import numpy as np

_ATOL = 1e-12  # tolerance on "sums to one"


@dataclasses.dataclass(frozen=True, eq=False)
class Node:
  """One variable of a world model and its annotation.

  Attributes:
    name: the variable's name (unique in its model).
    domain: its finite set of values, in axis order (numbers or strings).
    parents: the names of the nodes it depends on (its incoming arrows).
    table: [|dom(parent_1)|, …, |dom(parent_k)|, |domain|] float64, P(node | parents); every row
      sums to 1.
  """

  name: str
  domain: tuple
  parents: tuple[str, ...]
  table: np.ndarray

  def __post_init__(self):
    table = np.array(self.table, dtype=np.float64)
    domain = tuple(self.domain)
    if not domain or len(set(domain)) != len(domain):
      raise ValueError(f"node {self.name}: domain must be non-empty with distinct values")
    if table.ndim != len(self.parents) + 1 or table.shape[-1] != len(domain):
      raise ValueError(f"node {self.name}: table must have one axis per parent plus one of size "
                       f"|domain| = {len(domain)}, got shape {table.shape}")
    if np.any(~np.isfinite(table)) or np.any(table < 0):
      raise ValueError(f"node {self.name}: table must be finite and non-negative")
    if not np.allclose(table.sum(-1), 1.0, atol=_ATOL, rtol=0):
      raise ValueError(f"node {self.name}: every row of the table must sum to 1")
    table.setflags(write=False)
    object.__setattr__(self, "domain", domain)
    object.__setattr__(self, "parents", tuple(self.parents))
    object.__setattr__(self, "table", table)

  def same_annotation(self, other: "Node") -> bool:
    """True when both nodes have the same domain, parents and table."""
    return (self.domain == other.domain and self.parents == other.parents
            and self.table.shape == other.table.shape and np.array_equal(self.table, other.table))


def chance(name: str, distribution: Mapping[Any, float]) -> Node:
  """A parentless random node, e.g. a die: D(d) = 1/6 for d ∈ {1, …, 6} ([H]).

  Args:
    name: the node's name.
    distribution: value -> probability (the domain is its keys, in order).
  """
  values = tuple(distribution)
  return Node(name, values, (), np.array([distribution[v] for v in values], np.float64))


def function(name: str, parents: Sequence[Node], fn: Callable[..., Any]) -> Node:
  """A deterministic node, value = fn(*parent values), e.g. sum(a, b) = a + b ([H]).

  Its domain is the sorted set of fn over all parent value combinations.
  """
  combos = list(itertools.product(*(p.domain for p in parents)))
  outputs = [fn(*c) for c in combos]
  domain = tuple(sorted(set(outputs)))
  index = {v: i for i, v in enumerate(domain)}
  table = np.zeros(tuple(len(p.domain) for p in parents) + (len(domain),))
  for combo_index, out in zip(itertools.product(*(range(len(p.domain)) for p in parents)),
                              outputs):
    table[combo_index + (index[out],)] = 1.0
  return Node(name, domain, tuple(p.name for p in parents), table)


def conditional(name: str, parents: Sequence[Node], domain: Sequence[Any],
                fn: Callable[..., Mapping[Any, float]]) -> Node:
  """A random node with parents: fn(*parent values) is the distribution value -> probability."""
  domain = tuple(domain)
  index = {v: i for i, v in enumerate(domain)}
  table = np.zeros(tuple(len(p.domain) for p in parents) + (len(domain),))
  for combo_index in itertools.product(*(range(len(p.domain)) for p in parents)):
    values = [p.domain[i] for p, i in zip(parents, combo_index)]
    for v, prob in fn(*values).items():
      if v not in index:
        raise ValueError(f"node {name}: value {v!r} is not in its domain {domain}")
      table[combo_index + (index[v],)] += prob
  return Node(name, domain, tuple(p.name for p in parents), table)


@dataclasses.dataclass(frozen=True, eq=False)
class WorldModel:
  """A graphical world model: nodes in topological order (parents before children).

  Attributes:
    nodes: the nodes.
    aliases: extra name -> node name (a twin model's shared nodes answer to both worlds' names).
  """

  nodes: tuple[Node, ...]
  aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    nodes = tuple(self.nodes)
    seen: dict[str, Node] = {}
    for node in nodes:
      if node.name in seen:
        raise ValueError(f"node names must be unique, {node.name} repeats")
      for axis, parent in enumerate(node.parents):
        if parent not in seen:
          raise ValueError(f"node {node.name}: parent {parent} must come before it")
        if node.table.shape[axis] != len(seen[parent].domain):
          raise ValueError(f"node {node.name}: table axis {axis} must have |dom({parent})| = "
                           f"{len(seen[parent].domain)} entries")
      seen[node.name] = node
    aliases = dict(self.aliases)
    for alias, target in aliases.items():
      if target not in seen or alias in seen:
        raise ValueError(f"alias {alias} -> {target}: target must be a node, alias must not be")
    object.__setattr__(self, "nodes", nodes)
    object.__setattr__(self, "aliases", aliases)

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(n.name for n in self.nodes)

  def node(self, name: str) -> Node:
    name = self.aliases.get(name, name)
    for n in self.nodes:
      if n.name == name:
        return n
    raise KeyError(f"no node {name}; nodes are {self.names}")

  def axis(self, name: str) -> int:
    return self.names.index(self.node(name).name)

  def joint(self) -> np.ndarray:
    """[|dom(node_1)|, …, |dom(node_n)|] P(all nodes) = Π_i P(node_i | parents_i)."""
    order = {n: i for i, n in enumerate(self.names)}
    operands = []
    for node in self.nodes:
      operands += [node.table, [order[p] for p in node.parents] + [order[node.name]]]
    return np.einsum(*operands, list(range(len(self.nodes))), optimize=True)

  def values(self) -> dict[str, np.ndarray]:
    """name -> the node's values as an array broadcast along its axis (aliases included)."""
    n = len(self.nodes)
    out = {}
    for i, node in enumerate(self.nodes):
      shape = [1] * n
      shape[i] = len(node.domain)
      out[node.name] = np.array(node.domain).reshape(shape)
    for alias, target in self.aliases.items():
      out[alias] = out[target]
    return out

  def probability(self, event: Callable[[Mapping[str, np.ndarray]], np.ndarray]) -> float:
    """P(event), event(values) a boolean array over the joint, e.g. lambda v: v["S"] == 12."""
    joint = self.joint()
    mask = np.broadcast_to(np.asarray(event(self.values()), bool), joint.shape)
    return float(joint[mask].sum())

  def expectation(self, quantity: str | Callable[[Mapping[str, np.ndarray]], np.ndarray]) -> float:
    """E(quantity): a node name (its numeric value) or a function of the values."""
    fn = (lambda v: v[quantity]) if isinstance(quantity, str) else quantity
    joint = self.joint()
    return float(np.sum(joint * np.broadcast_to(fn(self.values()), joint.shape)))

  def distribution(self, name: str) -> dict[Any, float]:
    """The marginal of one node, value -> probability."""
    i = self.axis(name)
    marg = self.joint().sum(axis=tuple(j for j in range(len(self.nodes)) if j != i))
    return {v: float(p) for v, p in zip(self.nodes[i].domain, marg)}

  def replace(self, *new_nodes: Node) -> "WorldModel":
    """The diagram with the named nodes' annotations replaced (a counterfactual diagram c)."""
    by_name = {n.name: n for n in new_nodes}
    missing = set(by_name) - set(self.names)
    if missing:
      raise ValueError(f"replace: no node {sorted(missing)} in {self.names}")
    return WorldModel(tuple(by_name.get(n.name, n) for n in self.nodes))


def twin(factual: WorldModel, counterfactual: WorldModel, labels: tuple[str, str] = ("f", "c"),
         share: bool = True) -> WorldModel:
  """Both worlds on one probability space; node X of world w is named f"{X}_{w}".

  With `share`, a node whose annotation (domain, parents, table) is the same in both diagrams and
  whose parents are all shared is one node, named X, with aliases X_f and X_c: it takes the same
  value in both worlds. Every other node appears twice, X_f over f's parents and X_c over c's.
  Without `share`, the worlds are independent copies.

  Args:
    factual, counterfactual: diagrams with the same node names in the same order (c is typically
      `factual.replace(...)`).
    labels: the world subscripts (f, c).
    share: whether unchanged nodes upstream of every change are shared.

  Returns:
    A WorldModel whose joint is P(f's and c's variables).
  """
  f_label, c_label = labels
  if factual.names != counterfactual.names:
    raise ValueError("twin: both diagrams must have the same node names in the same order")
  shared: set[str] = set()
  f_nodes, c_nodes, aliases = [], [], {}
  for fn_, cn in zip(factual.nodes, counterfactual.nodes):
    if share and fn_.same_annotation(cn) and all(p in shared for p in fn_.parents):
      shared.add(fn_.name)
      f_nodes.append(fn_)
      aliases[f"{fn_.name}_{f_label}"] = fn_.name
      aliases[f"{fn_.name}_{c_label}"] = fn_.name
      continue
    for node, label, out in ((fn_, f_label, f_nodes), (cn, c_label, c_nodes)):
      parents = tuple(p if p in shared else f"{p}_{label}" for p in node.parents)
      out.append(Node(f"{node.name}_{label}", node.domain, parents, node.table))
  return WorldModel(tuple(f_nodes) + tuple(c_nodes), aliases)


# --------------------------------------------------------------------------- [H]'s dice world


def die(name: str, sides: Sequence[int] = (1, 2, 3, 4, 5, 6)) -> Node:
  """A fair die: D(d) = 1/|sides| on its sides (with repeats: a die with 6 on all sides is
  `die(name, [6] * 6)`)."""
  counts: dict[int, int] = {}
  for s in sides:
    counts[s] = counts.get(s, 0) + 1
  return chance(name, {s: n / len(sides) for s, n in sorted(counts.items())})


def dice_world() -> WorldModel:
  """[H]'s game world f: a green die X, a red die Y (both D) and the score S = sum(X, Y)."""
  x, y = die("X"), die("Y")
  return WorldModel((x, y, function("S", (x, y), lambda a, b: a + b)))


def dice_counterfactual() -> WorldModel:
  """[H]'s counterfactual game world c: the red die has the number 6 on all sides."""
  f = dice_world()
  y = die("Y", [6] * 6)
  return f.replace(y, function("S", (f.node("X"), y), lambda a, b: a + b))
