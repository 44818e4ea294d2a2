"""The tic-tac-toe retraining result ([D] §4.2, Table 2, App. B): the Decision-Transformer
encoding, play by the rules, training windows, the experiment."""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_meta import reproduce
from causal_meta.reproduce import tictactoe_retrain as lib
from causal_meta.tabular import tictactoe_exact
from causal_meta.tasks import tictactoe as ttt

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_decision_transformer_encoding():
  games = lib.all_games_dataset(both_sides=True)
  g = 0  # the first enumerated game: x plays 0, o 1, x 2, ..., x wins on the diagonal
  w0 = lib.game_window(games, jnp.array(g), jnp.array(0))
  assert ttt.decode(w0) == "$" * 20 + "#" + "." * 9
  w2 = lib.game_window(games, jnp.array(g), jnp.array(2))
  assert ttt.decode(w2) == "#........." "#x........" "#xo......."
  # The swapped copy: o moved first and won, so its outcome token is 'O'.
  half = games.outcome.shape[0] // 2
  assert ttt.decode(lib.game_window(games, jnp.array(half), jnp.array(2))) == (
      "O........." "Oo........" "Oox.......")
  counts = np.bincount(np.asarray(games.outcome[half:]), minlength=ttt.VOCAB)
  assert (counts[ttt.O_WINS], counts[ttt.X_WINS], counts[ttt.DRAW]) == (131184, 77904, 46080)


def _tiny_model():
  model = lib.DecisionTransformer(width=16, num_layers=1, num_heads=2)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((ttt.CONTEXT,), jnp.int32))["params"]
  return model, params


def test_played_games_follow_the_rules():
  model, params = _tiny_model()
  for first in (True, False):
    games, stats = lib.play(model, params, jax.random.PRNGKey(1), 64, True, first)
    boards, n = np.asarray(games.boards), np.asarray(games.num_boards)
    for b, k, out in zip(boards, n, np.asarray(games.outcome)):
      for t in range(1, k):
        diff = np.flatnonzero(b[t] != b[t - 1])
        assert len(diff) == 1 and b[t - 1][diff[0]] == 0
        mover = 1 if (t % 2 == 1) == first else 2
        assert b[t][diff[0]] == mover
      assert bool(ttt.is_over(b[k - 1])) and not any(ttt.is_over(b[t]) for t in range(k - 1))
      assert out == int(ttt.outcome_token(ttt.winner(b[k - 1])))
    assert float(stats["kl"]) >= 0
    expected = np.mean([float(ttt.score(ttt.winner(b[k - 1]))) for b, k in zip(boards, n)])
    np.testing.assert_allclose(float(stats["score"]), expected, rtol=1e-6)


def test_fit_and_windows_agree_with_games():
  games = lib.all_games_dataset(both_sides=False)
  w, weights = lib.sample_windows(jax.random.PRNGKey(0), games, 256)
  w = np.asarray(w)
  np.testing.assert_array_equal(np.asarray(weights), 1.0)  # uniform draws
  # The last block's outcome token equals every outcome token before it in the window.
  last = w[:, 20]
  for j in (0, 10):
    np.testing.assert_array_equal(np.where(w[:, j] == ttt.BOS, last, w[:, j]), last)
  # Each window's boards differ by at most one mark from block to block.
  cells = w.reshape(-1, 3, 10)[:, :, 1:]
  valid = w.reshape(-1, 3, 10)[:, :-1, 0] != ttt.BOS
  changed = np.sum(cells[:, 1:] != cells[:, :-1], -1)
  assert np.all(np.where(valid, changed == 1, True))


def test_weighted_draws_reweighted_estimate_the_uniform_mean():
  """With board_weights, board k is drawn with probability ∝ (its share of positions) ×
  weight[k], and each draw's weight is (uniform probability) / (drawn probability), counted
  here from the games' lengths: a weighted mean over draws estimates the uniform mean."""
  full = lib.all_games_dataset(both_sides=False)
  games = jax.tree.map(lambda x: x[::500], full)  # 511 games of every length
  board_weights = (1.0, 1.0, 2.0, 1.0, 1.0, 3.0, 3.0, 5.0, 3.0, 0.5)
  n = 40_000
  w, weights = lib.sample_windows(jax.random.PRNGKey(3), games, n, board_weights)
  w, weights = np.asarray(w), np.asarray(weights)
  k = np.sum(w[:, 21:] != ttt.EMPTY, 1)  # marks on the last board
  lengths = np.asarray(games.num_boards)
  uniform = np.array([np.sum(lengths > j) for j in range(10)]) / lengths.sum()  # p(k)
  drawn = uniform * np.array(board_weights) / np.sum(uniform * np.array(board_weights))
  np.testing.assert_allclose(weights, (uniform / drawn)[k], rtol=1e-5)
  freq = np.bincount(k, minlength=10) / n
  np.testing.assert_allclose(freq, drawn, atol=4 * np.sqrt(drawn * (1 - drawn) / n).max())
  # Windows are still real windows of the games: the last board is board k of some game.
  boards = np.asarray(games.boards)
  seen = {(kk, b.tobytes()) for g, kl in enumerate(lengths) for kk, b in
          enumerate(np.asarray(ttt.cell_tokens(boards[g, :kl])).astype(w.dtype))}
  assert all((kk, row[21:].tobytes()) in seen for kk, row in zip(k[:500], w[:500]))


def test_data_loss_is_the_mean_loss_over_every_window():
  """`data_loss` over the distinct windows, weighted by their counts, is the plain mean of
  `window_loss` over every (game, board) window of the data set, enumerated one by one; its
  excess by board adds up to the loss minus the data's entropy, counted by brute force
  (`window_entropy`), and each window's floor is the count of the window over the count of
  what it is predicted from."""
  full = lib.all_games_dataset(both_sides=True)
  pick = np.r_[0:300, len(full.outcome) - 300:len(full.outcome)]  # x-first and o-first games
  games = jax.tree.map(lambda x: x[pick], full)
  windows = lib.unique_windows(games)
  n = np.asarray(games.num_boards)
  assert windows.count.sum() == n.sum()
  tokens = np.asarray(windows.tokens)
  assert len(np.unique(tokens, axis=0)) == len(tokens) < n.sum()
  g, k = np.nonzero(np.arange(ttt.MAX_BOARDS)[None] < n[:, None])
  every = jax.vmap(lib.game_window, (None, 0, 0))(games, jnp.asarray(g), jnp.asarray(k))
  model, params = _tiny_model()
  loss, by_board = lib.data_loss(model, params, windows, chunk=256)
  np.testing.assert_allclose(loss, float(lib.window_loss(model, params, every)), rtol=1e-5)
  entropy = tictactoe_exact.window_entropy(np.asarray(games.boards), n,
                                           np.asarray(games.outcome))
  np.testing.assert_allclose(by_board.sum(), loss - entropy, rtol=1e-5)
  every = np.asarray(every)
  for i in (0, 7, len(tokens) // 2, len(tokens) - 1):  # a few windows by brute force
    same = np.all(every == tokens[i], 1)
    context = np.all(every[:, :20] == tokens[i, :20], 1)
    np.testing.assert_allclose(windows.floor[i], -np.log(same.sum() / context.sum()))
    assert windows.board[i] == np.sum(tokens[i, 21:] != ttt.EMPTY)


def test_both_protocols_write_rows_and_share_the_conditioned_player(tmp_path):
  """The paper's protocol (one model fine-tuned on victory-conditioned games, scored both
  ways) and the separate one fine-tune the conditioned player on the same games with the same
  keys, so their conditioned rows are equal; their unconditioned rows differ after round 0."""
  rows, exact_rows = {}, {}
  for protocol in ("paper", "separate"):
    size = "quick" if protocol == "paper" else "quick_separate"
    c = reproduce.load_config(str(ROOT / "experiments" / "tictactoe_retrain.py"), size)
    assert c.protocol == protocol
    c.model = dict(width=16, num_layers=1, num_heads=2)
    c.pretrain_updates, c.finetune_updates, c.games_per_round, c.eval_games = 10, 5, 32, 32
    c.rounds = 1
    c.data_loss = protocol == "paper"  # once is enough
    lib.run(c, str(tmp_path / protocol), log=lambda *_: None)
    results = json.load(open(tmp_path / protocol / "results.json"))
    rows[protocol] = results["rows"]
    exact_rows[protocol] = results["exact_rows"]
    assert [(r["round"], r["conditioned"]) for r in exact_rows[protocol]] == [
        (0, True), (1, True), (0, False), (1, False)]
    assert "exact P1 KL" in lib.format_table(results)
    if c.data_loss:  # a cross-entropy over the whole data set is at least its entropy
      assert results["pretrain"]["data_loss"] > results["pretrain"]["floor"] > 0.14
    assert [(r["round"], r["conditioned"]) for r in rows[protocol]] == [
        (0, True), (1, True), (0, False), (1, False)]
    for r in rows[protocol]:
      assert 0 <= r["p1_score"] <= 1 and 0 <= r["p2_score"] <= 1 and r["kl"] >= 0
  paper, separate = rows["paper"], rows["separate"]
  for i in (0, 1, 2):  # conditioned rounds 0 and 1, unconditioned round 0
    assert paper[i] == separate[i]
  assert paper[3] != separate[3]
  # The exact column follows the same protocols: the perfect model fine-tuned on the
  # victory-conditioned player's games gains as P1 in both readings ([D]'s protocol); fine-
  # tuned on its own unconditioned games, the unconditioned player stays where it was.
  ex_paper, ex_separate = exact_rows["paper"], exact_rows["separate"]
  assert ex_paper[:3] == ex_separate[:3]
  assert ex_paper[1]["p1_score"] > ex_paper[0]["p1_score"]
  assert ex_paper[3]["p1_score"] > ex_paper[2]["p1_score"]
  assert ex_separate[3]["p1_score"] == pytest.approx(ex_separate[2]["p1_score"], abs=1e-9)
  c.protocol = "both"
  with pytest.raises(ValueError, match="protocol"):
    lib.run(c, None, log=lambda *_: None)
  c.protocol = "paper"
  for field, value in (("schedule", "linear"), ("warmup_updates", c.pretrain_updates),
                       ("finetune_learning_rate", 0.0), ("board_weights", (1.0,) * 9),
                       ("board_weights", (1.0,) * 9 + (0.0,))):
    bad = c.copy_and_resolve_references()
    bad[field] = value
    with pytest.raises(ValueError, match=field):
      lib.check(bad)


def test_seeds_give_one_run_each_and_their_mean_and_std(tmp_path):
  c = reproduce.load_config(str(ROOT / "experiments" / "tictactoe_retrain.py"), "quick")
  c.model = dict(width=16, num_layers=1, num_heads=2)
  c.pretrain_updates, c.finetune_updates, c.games_per_round, c.eval_games = 10, 5, 32, 32
  c.rounds, c.data_loss, c.seeds = 1, False, (0, 1)
  results = lib.reproduce(str(tmp_path), config=c)
  runs = [json.load(open(tmp_path / f"seed_{s}" / "results.json")) for s in (0, 1)]
  assert [r["config"]["seed"] for r in runs] == results["seeds"] == [0, 1]
  for i, row in enumerate(results["rows"]):
    values = [r["rows"][i]["p1_score"] for r in runs]
    np.testing.assert_allclose(row["p1_score"], (np.mean(values), np.std(values)))
  assert json.load(open(tmp_path / "results.json"))["rows"][0]["conditioned"] is True
  c.seeds = ()
  with pytest.raises(ValueError, match="seeds"):
    lib.check(c)


def test_play_in_chunks_is_the_same_games():
  model, params = _tiny_model()
  games, stats = lib.play(model, params, jax.random.PRNGKey(2), 40, False, True)
  chunked, chunked_stats = lib.play(model, params, jax.random.PRNGKey(2), 40, False, True,
                                    chunk=16)
  jax.tree.map(np.testing.assert_array_equal, games, chunked)
  for k in stats:
    np.testing.assert_allclose(stats[k], chunked_stats[k], rtol=1e-5)
