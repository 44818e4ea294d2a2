"""Exact padlock references ([D] Table 1; `causal_meta.tabular.padlock_exact`) against brute
force: on small padlocks with random starts, every quantity is recomputed by enumerating each
start, each code and each history of whole switch configurations, with the experts of the
real task (`tasks.padlock`, ε = 1e-7 standing for the ε → 0 limit) and Bayes' rule over the
codes; no XOR symmetry, no public-phase shortcut, no deviation counts."""

import functools
import itertools
import math

import jax
import numpy as np
import pytest

from causal_meta.tabular import padlock_exact as E
from causal_meta.tasks.padlock import padlock as make_padlock

EPS = 1e-7


class Brute:
  """The paper's padlock (n switches, m secret, random start) by enumeration of histories."""

  def __init__(self, n, m, horizon, rounds):
    self.n, self.m, self.horizon, self.rounds = n, m, horizon, rounds
    task = make_padlock(num_switches=n, num_secret=m, epsilon=EPS, horizon=horizon)
    self.configs = list(itertools.product((0, 1), repeat=n))
    self.codes = [tuple(int(b) for b in task.code(t)) for t in range(2 ** m)]
    expert = jax.jit(lambda t, s: jax.numpy.exp(task.expert_logits(t, s)))
    # P_expert(a | θ, switches) from the task itself, float64 after the fact.
    self.expert = {(t, c): np.asarray(expert(t, np.array(c + (0,), np.int32)), np.float64)
                   for t in range(2 ** m) for c in self.configs}
    self.public = self.codes[0][:n - m]

  def visited(self, s0, actions):
    out, c = [s0], list(s0)
    for a in actions:
      c[a] = 1 - c[a]
      out.append(tuple(c))
    return out

  def alive(self, s0, actions):
    """The codes no visited configuration opened (the ideal posterior's support)."""
    seen = set(self.visited(s0, actions))
    return [t for t in range(2 ** self.m) if self.codes[t] not in seen]

  def pretrained_posterior(self, s0, actions, last=None):
    """P(θ | s0, actions, no S) for the noisy experts: Bayes over every code; with `last`, also
    given the next flip `last` (whose outcome is not seen yet)."""
    flips = actions if last is None else actions + (last,)
    configs = self.visited(s0, flips)
    post = np.zeros(2 ** self.m)
    for t in self.alive(s0, actions):
      post[t] = np.prod([self.expert[t, configs[i]][a] for i, a in enumerate(flips)])
    return post / post.sum()

  def base_policy(self, s0, actions):
    post = self.pretrained_posterior(s0, actions)
    c = self.visited(s0, actions)[-1]
    return sum(post[t] * self.expert[t, c] for t in range(2 ** self.m))

  def base_p_open(self, s0, actions, a):
    post = self.pretrained_posterior(s0, actions, last=a)
    new = self.visited(s0, actions + (a,))[-1]
    return sum(post[t] for t in range(2 ** self.m) if self.codes[t] == new)

  def ideal_p_open(self, s0, actions, a):
    alive = self.alive(s0, actions)
    new = self.visited(s0, actions + (a,))[-1]
    return sum(self.codes[t] == new for t in alive) / len(alive)

  @functools.lru_cache(maxsize=None)
  def success(self, level, s0, actions):
    """P(opens within the horizon | s0, actions, not open) under round `level`'s play."""
    if len(actions) >= self.horizon:
      return 0.0
    pol = self.policy(level, s0, actions)
    return sum(pol[a] * self.success_after(level, s0, actions, a) for a in range(self.n)
               if pol[a] > 0)

  def success_after(self, level, s0, actions, a):
    q = self.ideal_p_open(s0, actions, a)
    return q + (1 - q) * (self.success(level, s0, actions + (a,)) if q < 1 else 0.0)

  @functools.lru_cache(maxsize=None)
  def policy(self, level, s0, actions):
    if level == 0:
      return self.base_policy(s0, actions)
    pol = self.policy(level - 1, s0, actions)
    v = self.success(level - 1, s0, actions)
    if v <= 0:
      return pol
    return np.array([pol[a] * self.success_after(level - 1, s0, actions, a) / v
                     if pol[a] > 0 else 0.0 for a in range(self.n)])

  def p_open(self, level, s0, actions, a):
    if level == 0:
      return self.base_p_open(s0, actions, a)
    w = self.success_after(level - 1, s0, actions, a)
    return self.ideal_p_open(s0, actions, a) / w if w > 0 else self.p_open(level - 1, s0,
                                                                             actions, a)

  def p_open_start(self, level, s0):
    q = self.ideal_start(s0)
    if level == 0:
      return q
    return q / (q + (1 - q) * self.success(level - 1, s0, ()))

  def ideal_start(self, s0):
    return sum(c == s0 for c in self.codes) / 2 ** self.m

  def measures(self):
    """Accuracy and the three delusion measures, summed over starts, codes and histories."""
    level = self.rounds
    tot = dict(acc=0.0, reach=0.0, kl_mi=0.0, kl_im=0.0, certain=0.0, steps=0.0, step_kl=0.0)
    weight = 1.0 / (len(self.configs) * 2 ** self.m)

    def kls(q, p):
      return E._bernoulli_kl(p, q), E._bernoulli_kl(q, p)  # (model ‖ ideal, ideal ‖ model)

    def visit(s0, code, actions, w, public_set):
      c = self.visited(s0, actions)[-1]
      if len(actions) == self.horizon:
        return
      pol = self.policy(level, s0, actions)
      for a in range(self.n):
        if pol[a] <= 1e-5:  # a random flip of the ε-experts: probability 0 in the limit
          continue
        new = list(c)
        new[a] = 1 - new[a]
        new = tuple(new)
        q, p = self.ideal_p_open(s0, actions, a), self.p_open(level, s0, actions, a)
        p = 1.0 if p > 1 - 1e-4 else p  # ε stands for 0: the model is sure
        mi, im = kls(q, p)
        wa = w * pol[a]
        tot["steps"] += wa
        tot["step_kl"] += wa * im
        if (public_set or new[:self.n - self.m] == self.public) and 0 < q < 1:
          tot["reach"] += wa
          tot["kl_mi"] += wa * mi
          tot["kl_im"] += wa * im
          tot["certain"] += wa * (p >= 1 > q)
        if new == code:
          tot["acc"] += wa
        else:
          visit(s0, code, actions + (a,), wa, public_set or new[:self.n - self.m] == self.public)

    for s0 in self.configs:
      for code in self.codes:
        if s0[:self.n - self.m] == self.public:  # position 0 is the start
          q, p = self.ideal_start(s0), self.p_open_start(level, s0)
          mi, im = kls(q, p)
          tot["reach"] += weight
          tot["kl_mi"] += weight * mi
          tot["kl_im"] += weight * im
          if s0 == code:
            tot["acc"] += weight
            continue
        visit(s0, code, (), weight, s0[:self.n - self.m] == self.public)
    return dict(accuracy=tot["acc"], delusion_app_c=tot["kl_mi"] / tot["reach"],
                delusion_app_c_reverse=tot["kl_im"] / tot["reach"],
                delusion_steps=tot["step_kl"] / tot["steps"],
                certain_fraction=tot["certain"] / tot["reach"], positions_per_episode=tot["reach"])


def exact_model(m, rounds):
  model = E.Pretrained(m)
  for _ in range(rounds):
    model = E.GoalConditioned(model)
  return model


@pytest.mark.parametrize("n,m,horizon", [(4, 2, 5), (5, 3, 4)])
@pytest.mark.parametrize("rounds", [0, 1, 2])
def test_against_brute_force(n, m, horizon, rounds):
  want = Brute(n, m, horizon, rounds).measures()
  got = E.evaluate(exact_model(m, rounds), n, m, horizon)
  for name in ("accuracy", "delusion_app_c", "certain_fraction", "positions_per_episode"):
    np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-6, err_msg=name)
  for name in ("delusion_app_c_reverse", "delusion_steps"):
    # Infinite where the model is sure of S and the ideal is not; ε only makes it large.
    if math.isinf(got[name]):
      assert want[name] > 5 or want["certain_fraction"] > 0, name
    else:
      np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_the_ideal_is_not_deluded_and_random_play_matches_enumeration():
  got = E.evaluate(E.Interventional(2), 4, 2, 5)
  assert got["delusion_app_c"] == got["delusion_steps"] == 0
  assert got["accuracy"] <= E.best_accuracy(4, 2, 5) + 1e-12
  # Random play by enumerating every start, code and sequence of flips.
  n, horizon = 4, 5
  hits = 0.0
  for s0 in itertools.product((0, 1), repeat=n):
    dist = sum(s0)  # distance to an all-zero code; every code is alike by symmetry
    if dist == 0:
      hits += 1.0
      continue
    for flips in itertools.product(range(n), repeat=horizon):
      c = list(s0)
      for a in flips:
        c[a] = 1 - c[a]
        if not any(c):
          hits += n ** -horizon
          break
  np.testing.assert_allclose(E.random_play_accuracy(n, horizon), hits / 2 ** n, rtol=1e-12)


@pytest.mark.parametrize("horizon", [2, 3, 4, 5, 6, 8])
def test_best_accuracy_is_a_gray_code_search(horizon):
  """The bound: set the public switches, then walk a Gray code over the secret ones."""
  n, m = 4, 2
  public = (1, 0)
  gray = [0, 1, 0]  # secret switch to flip at each step: 00, 10, 11, 01
  opened = 0
  for s0 in itertools.product((0, 1), repeat=n):
    for secret in itertools.product((0, 1), repeat=m):
      code, c = public + secret, list(s0)
      flips = [i for i in range(n - m) if c[i] != public[i]] + [n - m + g for g in gray]
      hit = tuple(c) == code
      for a in flips[:horizon]:
        c[a] = 1 - c[a]
        hit = hit or tuple(c) == code
      opened += hit
  np.testing.assert_allclose(E.best_accuracy(n, m, horizon), opened / 2 ** (n + m))
  for rounds in (0, 1):
    assert E.evaluate(exact_model(m, rounds), n, m, horizon)["accuracy"] <= (
        E.best_accuracy(n, m, horizon) + 1e-12)


def test_paper_size_shape():
  """n = 15, m = 5: the perfect pretrained model searches almost as well as anyone can, and
  fine-tuning on its own relabelled rollouts removes part of its delusion."""
  pre = E.evaluate(E.Pretrained(5), 15, 5, 12)
  tuned = E.evaluate(E.GoalConditioned(E.Pretrained(5)), 15, 5, 12)
  best = E.best_accuracy(15, 5, 12)
  assert best - 0.01 < pre["accuracy"] <= best + 1e-12
  assert tuned["delusion_app_c"] < pre["delusion_app_c"] / 1.5
  with pytest.raises(ValueError, match="horizon must be at least"):
    E.evaluate(E.Pretrained(5), 15, 5, 9)
