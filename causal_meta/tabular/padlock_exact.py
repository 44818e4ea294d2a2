"""Exact padlock references for [D] Table 1 (§4.1, App. C) at the paper's size, by enumeration.

The paper's padlock: n switches start in a uniformly random configuration, which the model
sees; the code's first n − m bits are public, its last m bits uniform over 2^m codes; each
step flips one switch, and the success token S follows the flip that makes the switches equal
the code. Its experts know the code and need at most n flips; here they flip the lowest-index
switch that differs (causal_meta's padlock expert; [D] does not say in which order), so every
expert episode first sets the public switches, then the secret ones.

Models (all deterministic functions of the history, as a perfect fit would be):
  `Interventional()`  the ideal: P(S) = P(the new configuration is the code | do(flips), no S
                      so far), uniform over the untested codes; it acts as the expert of a code
                      drawn from that posterior (the interventional oracle policy).
  `Pretrained()`      the perfect model of the expert data (the conditional oracle): it reads
                      its own flips as an expert's. Where no code explains its history (its
                      believed code failed to open), the data say nothing; this is the limit of
                      experts who flip a random switch with probability ε → 0: the posterior is
                      uniform over the untested codes that explain the flips with the fewest
                      random ones.
  `GoalConditioned(base)`  a goal-conditioned model fine-tuned to perfection on `base`'s own
                      rollouts relabelled with their outcome ([D] §4.1, App. C), asked for
                      success: P(a | history, success within the horizon) and P(S | history,
                      success) under `base`'s play in the true world. Two rounds: apply twice.

Reduction (exact, not an approximation): every model flips the d public switches that differ
first (d ~ Binomial(n − m, ½)), identically, so only the secret phase branches; and the
problem is symmetric under XOR-relabelling the secret switches, so their start is 0 with the
code uniform. Position 0 is the S slot after the public switches are set (after the start when
d = 0; it tests the start configuration); position k ≥ 1 follows the k-th secret flip; a
horizon of T flips leaves T − d of them. Histories are enumerated as states (configuration,
set of tested configurations, the model's own summary), merged where equal.

Measures, on the model's own rollouts (asked for success where it is goal-conditioned):
accuracy = P(the lock opens within T flips); [D] App. C's delusion: the KL between the model's
P(S) and the ideal one at the positions after the public switches are set, averaged over the
positions reached where the ideal P(S) is neither 0 (a tested configuration) nor 1 (the last
untested code), where any model short of perfect has an infinite KL(model ‖ ideal) (both
directions, nats per position);
causal_meta's delusion
(`retrain.delusion_from_logits`' `delusion`): KL(ideal ‖ model) averaged over every flip, the
public ones included.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

State = tuple  # (configuration, tested mask, the model's own summary)


def _lowest_bit(x: int) -> int:
  return (x & -x).bit_length() - 1


def _untested(tested: int, codes: int) -> list[int]:
  """The codes whose configuration is not in the bit mask `tested`."""
  return [t for t in range(codes) if not (tested >> t) & 1]


def _expert_of_one(c: int, candidates: list[int]) -> tuple:
  """The expert's flip from configuration c for a code drawn uniformly from `candidates`:
  ((secret switch, probability), ...)."""
  probs: dict = {}
  for t in candidates:
    a = _lowest_bit(c ^ t)
    probs[a] = probs.get(a, 0.0) + 1.0 / len(candidates)
  return tuple(probs.items())


def _bernoulli_kl(p: float, q: float) -> float:
  """KL(Bernoulli(p) ‖ Bernoulli(q)) in nats; inf where q gives zero mass to p's support."""
  out = 0.0
  for a, b in ((p, q), (1.0 - p, 1.0 - q)):
    if a > 0:
      out = math.inf if b <= 0 else out + a * math.log(a / b)
  return out


class Interventional:
  """The ideal model and the interventional oracle policy (see the module docstring)."""

  budget_free = True

  def __init__(self, num_secret: int):
    self.codes = 1 << num_secret

  def start(self) -> State:
    return (0, 1, ())  # the start configuration is tested at position 0

  def policy(self, s, b):
    del b
    return _expert_of_one(s[0], _untested(s[1], self.codes))

  def p_open(self, s, a, b):
    del b
    return ideal_p_open(s, a, self.codes)

  def p_open_start(self, budget):
    del budget
    return 1.0 / self.codes

  def next(self, s, a):
    c = s[0] ^ (1 << a)
    return (c, s[1] | (1 << c), ())


def ideal_p_open(s: State, a: int, codes: int) -> float:
  """P(S right after flipping secret switch a from state s | no S so far), the true world."""
  c = s[0] ^ (1 << a)
  if (s[1] >> c) & 1:
    return 0.0
  return 1.0 / (codes - bin(s[1]).count("1"))


class Pretrained:
  """The perfect model of the expert data (the ε → 0 conditional oracle; module docstring).
  Its summary: for every untested code, the number of flips that code's expert would not
  have made, minus their minimum (tested codes: 0)."""

  budget_free = True

  def __init__(self, num_secret: int):
    self.codes = 1 << num_secret

  def start(self) -> State:
    return (0, 1, (0,) * self.codes)

  def _deviations(self, s, a):
    """Deviation counts after flipping a from s (unnormalised)."""
    c, _, dev = s
    return [d + (t != c and _lowest_bit(c ^ t) != a) for t, d in enumerate(dev)]

  def policy(self, s, b):
    del b
    c, tested, dev = s
    return _expert_of_one(c, [t for t in _untested(tested, self.codes) if dev[t] == 0])

  def p_open(self, s, a, b):
    del b
    c2 = s[0] ^ (1 << a)
    dev = self._deviations(s, a)
    untested = _untested(s[1], self.codes)
    low = min(dev[t] for t in untested)
    best = [t for t in untested if dev[t] == low]
    return (c2 in best) / len(best)

  def p_open_start(self, budget):
    del budget
    return 1.0 / self.codes

  def next(self, s, a):
    c2 = s[0] ^ (1 << a)
    tested = s[1] | (1 << c2)
    dev = self._deviations(s, a)
    untested = _untested(tested, self.codes)
    low = min((dev[t] for t in untested), default=0)
    return (c2, tested, tuple(dev[t] - low if not (tested >> t) & 1 else 0
                              for t in range(self.codes)))


class GoalConditioned:
  """`base` fine-tuned to perfection on its own rollouts relabelled by outcome, conditioned on
  success (module docstring). Where success is impossible under `base`, it acts as `base`."""

  budget_free = False

  def __init__(self, base):
    self.base = base
    self.codes = base.codes
    self._success: dict = {}  # (state, budget) -> success probability

  def start(self) -> State:
    return self.base.start()

  def success(self, s: State, budget: int) -> float:
    """P(the lock opens within `budget` more flips | s, not open yet), under base's play."""
    if budget <= 0:
      return 0.0
    if (s, budget) not in self._success:
      self._success[s, budget] = sum(p * self._success_after(s, a, budget)
                                     for a, p in self.base.policy(s, budget))
    return self._success[s, budget]

  def _success_after(self, s, a, budget):
    q = ideal_p_open(s, a, self.codes)
    if q >= 1.0:
      return 1.0
    return q + (1.0 - q) * self.success(self.base.next(s, a), budget - 1)

  def policy(self, s, b):
    base = self.base.policy(s, b)
    v = self.success(s, b)
    if v <= 0:
      return base
    return tuple((a, p * self._success_after(s, a, b) / v) for a, p in base
                 if p * self._success_after(s, a, b) > 0)

  def p_open(self, s, a, b):
    w = self._success_after(s, a, b)
    if w <= 0:
      return self.base.p_open(s, a, b)
    return ideal_p_open(s, a, self.codes) / w

  def p_open_start(self, budget):
    q = 1.0 / self.codes
    v = q + (1.0 - q) * self.success(self.start(), budget)
    return q / v

  def next(self, s, a):
    return self.base.next(s, a)


@dataclasses.dataclass
class Positions:
  """Per secret-phase position k (0 … K), summed over the model's rollouts that reach it
  unopened: `reach` P(reaching k), `opens` P(opening at k), `possible` P(reaching k where the
  ideal P(S) is neither 0 nor 1), and there: `kl_ideal_model` and
  `kl_model_ideal` the weighted Bernoulli KLs of P(S), `certain` P(the model sure of S while
  the ideal is not)."""
  reach: np.ndarray
  possible: np.ndarray
  opens: np.ndarray
  kl_ideal_model: np.ndarray
  kl_model_ideal: np.ndarray
  certain: np.ndarray


def positions(model, budget: int) -> Positions:
  """The secret phase played by `model` with `budget` secret flips (enumeration)."""
  codes = model.codes
  size = budget + 1
  out = Positions(*(np.zeros(size) for _ in range(6)))
  q0, p0 = 1.0 / codes, model.p_open_start(budget)
  _accumulate(out, 0, 1.0, q0, p0)
  layer = {model.start(): 1.0 - q0}
  for k in range(1, size):
    nxt: dict = {}
    for s, w in layer.items():
      for a, p in model.policy(s, budget - k + 1):
        q = ideal_p_open(s, a, codes)
        _accumulate(out, k, w * p, q, model.p_open(s, a, budget - k + 1))
        if q < 1.0:
          s2 = model.next(s, a)
          nxt[s2] = nxt.get(s2, 0.0) + w * p * (1.0 - q)
    layer = nxt
  return out


def _accumulate(out: Positions, k: int, w: float, q: float, p: float):
  out.reach[k] += w
  out.opens[k] += w * q
  # Where the ideal is sure (a tested configuration, or the last untested code), any learned
  # model's KL(model ‖ ideal) is ∞; App. C's averages leave those positions out.
  if 0 < q < 1 and w > 0:
    out.possible[k] += w
    out.kl_ideal_model[k] += w * _bernoulli_kl(q, p)
    out.kl_model_ideal[k] += w * _bernoulli_kl(p, q)
    out.certain[k] += w * (p >= 1.0 > q)


def public_flips(num_public: int) -> np.ndarray:
  """P(d public switches differ at the start), d = 0 … num_public: Binomial(num_public, ½)."""
  return np.array([math.comb(num_public, d) for d in range(num_public + 1)]) / 2.0 ** num_public


def evaluate(model, num_switches: int, num_secret: int, horizon: int) -> dict[str, float]:
  """Accuracy and the delusion measures of `model` on the paper's padlock at `horizon` flips."""
  num_public = num_switches - num_secret
  if horizon < num_public:
    raise ValueError(f"padlock_exact: horizon must be at least the {num_public} public "
                     f"switches, got {horizon}")
  weights = public_flips(num_public)
  shared = positions(model, horizon) if model.budget_free else None
  acc = possible = kl_im = kl_mi = certain = steps = step_kl = 0.0
  for d, w in enumerate(weights):
    pos = shared if shared is not None else positions(model, horizon - d)
    k = horizon - d + 1  # positions 0 … horizon − d
    acc += w * pos.opens[:k].sum()
    possible += w * pos.possible[:k].sum()
    kl_im += w * pos.kl_ideal_model[:k].sum()
    kl_mi += w * pos.kl_model_ideal[:k].sum()
    certain += w * pos.certain[:k].sum()
    # causal_meta's per-flip measure: d public flips (KL 0 before the last; position 0 is the
    # last of them when d ≥ 1, the start otherwise) and the secret flips.
    first = 0 if d >= 1 else 1
    steps += w * (max(d - 1, 0) + pos.reach[first:k].sum())
    step_kl += w * pos.kl_ideal_model[first:k].sum()
  return dict(accuracy=acc, delusion_app_c=kl_mi / possible,
              delusion_app_c_reverse=kl_im / possible, delusion_steps=step_kl / steps,
              certain_fraction=certain / possible, positions_per_episode=possible)


def accuracies(model, num_switches: int, num_secret: int, horizons) -> list[float]:
  """`evaluate(...)['accuracy']` at each horizon, from one enumeration (`model.budget_free`)."""
  weights = public_flips(num_switches - num_secret)
  pos = positions(model, max(horizons))
  return [float(sum(w * pos.opens[:t - d + 1].sum() for d, w in enumerate(weights)))
          for t in horizons]


def random_play_accuracy(num_switches: int, horizon: int) -> float:
  """P(uniformly random flips open the lock within `horizon` flips) from a uniform start, by
  the Hamming-distance chain to the code (it is uniform on every switch: the code's public part
  is fixed but the start is uniform)."""
  n = num_switches
  dist = public_flips(n)
  opened = dist[0]
  dist = dist.copy()
  dist[0] = 0.0
  for _ in range(horizon):
    new = np.zeros_like(dist)
    new[:-1] += dist[1:] * np.arange(1, n + 1) / n
    new[1:] += dist[:-1] * (n - np.arange(n)) / n
    opened += new[0]
    new[0] = 0.0
    dist = new
  return float(opened)


def best_accuracy(num_switches: int, num_secret: int, horizon: int) -> float:
  """The best any agent can do: each secret flip tests a new configuration (a Gray code)."""
  codes = 1 << num_secret
  weights = public_flips(num_switches - num_secret)
  return float(sum(w * min(1.0, (1 + horizon - d) / codes) for d, w in enumerate(weights)))
