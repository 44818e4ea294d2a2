"""Exact tic-tac-toe references ([D] Table 2; `causal_meta.tabular.tictactoe_exact`) against a
second, naive method: every quantity is recomputed on reduced games (a mid-game position with
five empty cells) by listing whole games or trajectories and summing over prefixes, with no
Markov shortcut."""

import collections
import json
import math

import numpy as np
import pytest

from causal_meta.tabular import tictactoe_exact as E
from causal_meta.tasks import tictactoe as ttt

LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


def board(s):
  return tuple({".": 0, "x": 1, "o": 2}[c] for c in s)


# (start, first mover): x to move with x first; o to move with o first (x moves second).
REDUCED = [(board("x.o" ".x." "o.."), 1), (board(".o." "x.." "..o"), 2)]


def naive_outcome(b):
  """Outcome index of a board (0 x wins, 1 o wins, 2 draw) or None while the game goes on."""
  for line in LINES:
    v = {b[i] for i in line}
    if v == {1}:
      return 0
    if v == {2}:
      return 1
  return 2 if 0 not in b else None


def naive_games(start, first):
  """Every game from `start`: list of (tuple of boards, outcome index)."""
  out = []

  def go(boards):
    b = boards[-1]
    g = naive_outcome(b)
    if g is not None:
      out.append((boards, g))
      return
    p = first if b.count(1) == b.count(2) else 3 - first
    for c in range(9):
      if b[c] == 0:
        go(boards + (b[:c] + (p,) + b[c + 1:],))

  go((start,))
  return out


def naive_trajectories(policy, start, first):
  """Every trajectory of x playing `policy` ({(board, first): [9]}) against the uniform o:
  list of (tuple of boards, probability, outcome index, x's states in order)."""
  out = []

  def go(boards, prob, xs):
    b = boards[-1]
    g = naive_outcome(b)
    if g is not None:
      out.append((boards, prob, g, xs))
      return
    x_moves = (first if b.count(1) == b.count(2) else 3 - first) == 1
    empty = [c for c in range(9) if b[c] == 0]
    for c in empty:
      p = policy[(b, first)][c] if x_moves else 1 / len(empty)
      if p > 0:
        nb = b[:c] + ((1 if x_moves else 2),) + b[c + 1:]
        go(boards + (nb,), prob * p, xs + ((b, first),) if x_moves else xs)

  go((start,), 1.0, ())
  return out


def prefix_conditionals(paths):
  """From weighted paths [(boards, weight, outcome)]: {(prefix, g or None): [9]} the
  distribution of the next move given the whole prefix (and the outcome)."""
  num = collections.defaultdict(lambda: np.zeros(9))
  for boards, w, g in paths:
    for k in range(len(boards) - 1):
      cell = next(i for i in range(9) if boards[k][i] != boards[k + 1][i])
      for key in ((boards[:k + 1], None), (boards[:k + 1], g)):
        num[key][cell] += w
  return {key: v / v.sum() for key, v in num.items()}


@pytest.mark.parametrize("start,first", REDUCED)
def test_data_model_is_the_data_sets_own_conditionals(start, first):
  model = E.data_model(start, (first,))
  for s, p in model.items():
    # Every legal move has a completion, so the data's own policy has full support.
    assert p.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(p > 0, E.legal(s[0]))
  W = E.outcome_probs(model)
  cond = {g: E.conditional(model, g, W) for g in range(3)}
  games = naive_games(start, first)
  assert int(E.completions((start, first)).sum()) == len(games)
  np.testing.assert_allclose(W[(start, first)],
                             np.bincount([g for _, g in games], minlength=3) / len(games))
  checked = 0
  for (prefix, g), p in prefix_conditionals([(b, 1.0, g) for b, g in games]).items():
    s = (prefix[-1], first)
    np.testing.assert_allclose(model[s] if g is None else cond[g][s], p, atol=1e-12)
    checked += 1
  assert checked > 50


@pytest.mark.parametrize("start,first", REDUCED)
def test_entropy_floor_is_the_window_entropy_and_the_perfect_models_loss(start, first):
  games = naive_games(start, first)
  boards = np.zeros((len(games), ttt.MAX_BOARDS, 9), np.int8)
  for i, (bs, _) in enumerate(games):
    boards[i] = [bs[min(k, len(bs) - 1)] for k in range(ttt.MAX_BOARDS)]
  num_boards = np.array([len(bs) for bs, _ in games])
  outcome = np.array([(ttt.X_WINS, ttt.O_WINS, ttt.DRAW)[g] for _, g in games])
  floor = E.entropy_floor(start, (first,))
  assert floor["games"] == len(games) and floor["positions"] == num_boards.sum()
  h = E.window_entropy(boards, num_boards, outcome)
  assert floor["nats_per_token"] == pytest.approx(h, abs=1e-12)
  model = E.data_model(start, (first,))
  assert E.cross_entropy(model, start, first) == pytest.approx(h, abs=1e-12)
  # Any other model does worse on the same windows.
  other = {s: 0.5 * p + 0.5 * E.legal(s[0]) / np.sum(E.legal(s[0])) for s, p in model.items()}
  assert E.cross_entropy(other, start, first) > h + 1e-4


def test_full_entropy_floor_matches_the_runners_data_set():
  from causal_meta.reproduce.tictactoe_retrain import all_games_dataset
  games = all_games_dataset(both_sides=True)
  h = E.window_entropy(games.boards, games.num_boards, games.outcome)
  floor = E.entropy_floor()
  assert floor["games"] == games.outcome.shape[0] == 510336
  assert floor["positions"] == int(np.sum(games.num_boards))
  assert floor["nats_per_token"] == pytest.approx(h, abs=1e-10)
  assert h == pytest.approx(0.142015, abs=1e-6)
  # x-first games only: the same games, so the same mean length, and log N is smaller.
  assert E.entropy_floor(firsts=(1,))["nats_per_token"] == pytest.approx(
      h * math.log(255168) / math.log(510336))


def kl(p, q):
  m = p > 0
  return float(np.sum(p[m] * np.log(p[m] / q[m])))


@pytest.mark.parametrize("start,first", REDUCED)
def test_play_stats_and_finetune_match_trajectory_enumeration(start, first):
  model = E.data_model(start, (first,))
  pi, pi_cond = E.policies(model)
  for p in list(pi.values()) + list(pi_cond.values()):
    assert p.sum() == pytest.approx(1.0)
  assert any(not np.allclose(pi[s], pi_cond[s]) for s in pi)
  for policy in (pi, pi_cond):
    paths = naive_trajectories(policy, start, first)
    probs = np.array([w for _, w, _, _ in paths])
    assert probs.sum() == pytest.approx(1.0)
    stats = E.play_stats(policy, pi_cond, pi, first, start)
    assert stats["score"] == pytest.approx(sum(w * E.SCORE[g] for _, w, g, _ in paths))
    assert stats["win"] + stats["draw"] + stats["loss"] == pytest.approx(1.0)
    klg = sum(w * sum(kl(pi_cond[s], pi[s]) for s in xs) for _, w, _, xs in paths)
    dec = sum(w * len(xs) for _, w, _, xs in paths)
    assert stats["kl_game"] == pytest.approx(klg) and stats["decisions"] == pytest.approx(dec)
    assert stats["kl"] == pytest.approx(klg / dec)
  # Fine-tuning to perfection on π_cond's games = those games' own conditionals, per prefix.
  paths = naive_trajectories(pi_cond, start, first)
  new = E.finetune(model, pi_cond, first, start)
  new_pi, new_cond = E.policies(new)
  conds = prefix_conditionals([(b, w, g) for b, w, g, _ in paths])
  checked = 0
  for (prefix, g), p in conds.items():
    s = (prefix[-1], first)
    if g in (None, E.X_WINS) and E.to_move(*s) == 1:
      np.testing.assert_allclose((new_pi if g is None else new_cond)[s], p, atol=1e-12)
      checked += 1
  assert checked > 10
  # The fine-tuned unconditioned player is the old conditioned one on the states it visits.
  assert E.play_stats(new_pi, new_cond, new_pi, first, start)["score"] == pytest.approx(
      E.play_stats(pi_cond, pi_cond, pi, first, start)["score"])


def test_incoherence_is_the_sum_over_x_states():
  start, first = REDUCED[0]
  model = E.data_model(start, (first,))
  pi, pi_cond = E.policies(model)
  xs = [s for s in E.states(start, (first,)) if E.to_move(*s) == 1]
  assert set(xs) == set(pi)
  assert E.incoherence(pi_cond, pi, first) == pytest.approx(
      sum(kl(pi_cond[s], pi[s]) for s in xs))
  assert E.incoherence(pi, pi, first) == 0.0


def test_protocol_reference_numbers_and_runner(tmp_path, capsys):
  from causal_meta import reproduce
  results = reproduce.RESULTS["tictactoe_exact"](str(tmp_path / "run"))
  saved = json.loads((tmp_path / "run" / "results.json").read_text())
  assert (tmp_path / "run" / "figures" / "tictactoe_exact_scores.png").exists()
  assert saved["rows"] == results["rows"] and len(saved["rows"]) == 6
  assert "| victory-conditioned | 2nd fine-tune | 0.8405 |" in capsys.readouterr().out
  rows = {(r["round"], r["conditioned"]): r for r in results["rows"]}
  # Perfect pretrained model, then two rounds on the victory-conditioned player's games
  # ([D] Table 2: conditioned P1 0.7125 -> 0.8225 -> 0.8325, unconditioned 0.5725 -> 0.725 ->
  # 0.7675).
  got = [rows[(r, True)]["p1_score"] for r in range(3)]
  np.testing.assert_allclose(got, [0.725554, 0.788575, 0.840488], atol=2e-6)
  assert rows[(0, False)]["p1_score"] == pytest.approx(0.576607, abs=2e-6)
  assert rows[(0, True)]["p2_score"] == pytest.approx(0.584103, abs=2e-6)
  assert rows[(0, False)]["p2_score"] == pytest.approx(0.325253, abs=2e-6)
  assert rows[(0, True)]["p1_kl"] == pytest.approx(0.055467, abs=2e-6)
  assert rows[(0, True)]["kappa_p1"] == pytest.approx(344.167677, abs=1e-5)
  for r in (1, 2):
    # Fine-tuned on π_cond's games, the model's unconditioned P1 player is π_cond of before.
    assert rows[(r, False)]["p1_score"] == pytest.approx(rows[(r - 1, True)]["p1_score"])
    # The fine-tuning games have x first: P2 states keep the pretrained model.
    for c in (True, False):
      assert rows[(r, c)]["p2_score"] == pytest.approx(rows[(0, c)]["p2_score"])
  # Fine-tuned on its own games, the unconditioned player is a fixed point.
  own = [r["p1_score"] for r in results["rows_unconditioned_games"] if not r["conditioned"]]
  np.testing.assert_allclose(own, [rows[(0, False)]["p1_score"]] * 3)
  with pytest.raises(ValueError, match="games_of"):
    E.protocol(games_of="both")
