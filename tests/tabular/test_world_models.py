"""Graphical world models and counterfactual worlds ([H] "Graphical World Models"), checked
against plain enumeration written here (exact fractions) and [H]'s numbers."""

import itertools
from fractions import Fraction

import numpy as np
import pytest

from causal_meta.tabular import world_models as wm

DIE = range(1, 7)


def test_dice_world_matches_enumeration():
  """[H]: P(S = 12) and E(S) from the formal semantics, without running the simulator."""
  f = wm.dice_world()
  outcomes = [(x, y) for x in DIE for y in DIE]  # 36 equally likely throws
  p12 = Fraction(sum(x + y == 12 for x, y in outcomes), len(outcomes))
  mean = Fraction(sum(x + y for x, y in outcomes), len(outcomes))
  assert (p12, mean) == (Fraction(1, 36), Fraction(7))
  assert f.probability(lambda v: v["S"] == 12) == pytest.approx(float(p12), abs=1e-15)
  assert f.expectation("S") == pytest.approx(float(mean), abs=1e-14)
  dist = f.distribution("S")
  for s in range(2, 13):
    assert dist[s] == pytest.approx((6 - abs(s - 7)) / 36, abs=1e-15)
  # The observation X = 1, Y = 1, S = 12 has probability 0: it falsifies the theory ([H]).
  assert f.probability(lambda v: (v["X"] == 1) & (v["Y"] == 1) & (v["S"] == 12)) == 0.0


def test_counterfactual_red_die_six_matches_enumeration():
  """[H]: in c the red die shows 6 on all sides, and P(S_c > S_f) = 5/6. The green die is the
  same throw in both worlds (unchanged node, no parents): S_c > S_f iff Y_f < 6."""
  f, c = wm.dice_world(), wm.dice_counterfactual()
  t = wm.twin(f, c)
  assert t.node("X_f") is t.node("X_c")
  throws = [(x, y) for x in DIE for y in DIE]  # (X, Y_f); Y_c = 6
  p = Fraction(sum(x + 6 > x + y for x, y in throws), len(throws))
  assert p == Fraction(5, 6)
  assert t.probability(lambda v: v["S_c"] > v["S_f"]) == pytest.approx(5 / 6, abs=1e-15)
  assert t.expectation("S_c") == pytest.approx(9.5, abs=1e-14)
  assert t.probability(lambda v: v["S_c"] == v["S_f"]) == pytest.approx(1 / 6, abs=1e-15)
  assert c.probability(lambda v: v["Y"] == 6) == pytest.approx(1.0, abs=1e-15)
  # Independent worlds (a fresh green die in c) give another number: 20/27, not 5/6.
  indep = wm.twin(f, c, share=False)
  triples = list(itertools.product(DIE, DIE, DIE))  # (X_f, Y_f, X_c)
  q = Fraction(sum(xc + 6 > xf + yf for xf, yf, xc in triples), len(triples))
  assert q == Fraction(20, 27)
  assert indep.probability(lambda v: v["S_c"] > v["S_f"]) == pytest.approx(float(q), abs=1e-15)


def random_model(seed, n=5):
  """A random DAG of n nodes, domain sizes 2–3, each node with up to 2 earlier parents."""
  rng = np.random.default_rng(seed)
  nodes = []
  for i in range(n):
    k = min(i, int(rng.integers(0, 3)))
    parents = sorted(rng.choice(i, size=k, replace=False).tolist()) if k else []
    size = int(rng.integers(2, 4))
    shape = tuple(len(nodes[p].domain) for p in parents) + (size,)
    table = rng.dirichlet(np.ones(size), size=shape[:-1]) if parents else rng.dirichlet(
        np.ones(size))
    nodes.append(wm.Node(f"v{i}", tuple(range(size)), tuple(f"v{p}" for p in parents), table))
  return wm.WorldModel(tuple(nodes))


def brute_force_joint(model):
  """{assignment: probability} by the chain rule, one assignment at a time."""
  out = {}
  for assign in itertools.product(*(range(len(n.domain)) for n in model.nodes)):
    values = dict(zip(model.names, assign))
    p = 1.0
    for node in model.nodes:
      p *= node.table[tuple(values[q] for q in node.parents) + (values[node.name],)]
    out[assign] = p
  return out


@pytest.mark.parametrize("seed", range(5))
def test_joint_matches_chain_rule_enumeration(seed):
  model = random_model(seed)
  joint = model.joint()
  assert joint.sum() == pytest.approx(1.0, abs=1e-12)
  for assign, p in brute_force_joint(model).items():
    assert joint[assign] == pytest.approx(p, abs=1e-14)
  ev = lambda v: (v["v0"] + v["v4"]) % 2 == 0  # noqa: E731
  expected = sum(p for a, p in brute_force_joint(model).items() if (a[0] + a[4]) % 2 == 0)
  assert model.probability(ev) == pytest.approx(expected, abs=1e-14)


@pytest.mark.parametrize("seed", range(5))
def test_twin_worlds_have_the_right_marginals_and_share_the_upstream(seed):
  """Each world's marginal of the twin is that world's own model; nodes upstream of the change
  coincide, the changed node and everything downstream of it are recomputed."""
  f = random_model(seed)
  rng = np.random.default_rng(100 + seed)
  old = f.node("v2")
  new = wm.Node("v2", old.domain, old.parents, rng.dirichlet(np.ones(len(old.domain)),
                                                             size=old.table.shape[:-1]))
  c = f.replace(new)
  t = wm.twin(f, c)
  for name in ("v0", "v1"):
    assert t.node(f"{name}_f") is t.node(f"{name}_c")
  assert t.node("v2_f") is not t.node("v2_c")
  joint = t.joint()
  for world, model in (("f", f), ("c", c)):
    axes = [t.axis(f"{n}_{world}") for n in model.names]
    keep = sorted(set(axes))
    marg = joint.sum(axis=tuple(i for i in range(joint.ndim) if i not in keep))
    marg = np.moveaxis(marg, [keep.index(a) for a in axes], range(len(axes)))
    np.testing.assert_allclose(marg, model.joint(), atol=1e-14)
  assert t.probability(lambda v: v["v0_f"] != v["v0_c"]) == 0.0


def test_bad_models_raise_value_error():
  x = wm.die("X")
  with pytest.raises(ValueError, match="sum to 1"):
    wm.chance("Z", {0: 0.5, 1: 0.6})
  with pytest.raises(ValueError, match="parent Y must come before"):
    wm.WorldModel((wm.Node("S", (0, 1), ("Y",), np.full((6, 2), 0.5)), x))
  with pytest.raises(ValueError, match="table axis"):
    wm.WorldModel((x, wm.Node("S", (0, 1), ("X",), np.full((5, 2), 0.5))))
  with pytest.raises(ValueError, match="no node"):
    wm.dice_world().replace(wm.die("W"))
  with pytest.raises(ValueError, match="not in its domain"):
    wm.conditional("Z", (x,), (0, 1), lambda a: {2: 1.0})
  with pytest.raises(ValueError, match="same node names"):
    wm.twin(wm.dice_world(), wm.WorldModel((x,)))
