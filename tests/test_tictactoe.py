"""Tic-tac-toe ([D] §4.2, App. B): the set of all games, the rules, the encoding, play."""

import json

import jax
import jax.numpy as jnp
import numpy as np

from causal_meta import tictactoe as lib
from causal_meta.tasks import tictactoe as ttt


def test_all_games_counts():
  moves, length, win = ttt.all_games()
  assert len(moves) == 255168
  # Standard x-first enumeration: 131,184 x wins, 77,904 o wins, 46,080 draws.
  np.testing.assert_array_equal(np.bincount(win), [46080, 131184, 77904])
  # Games by length: 1,440 end after 5 moves, 5,328 after 6, 47,952 after 7, 72,576 after 8,
  # 127,872 after 9 (81,792 x wins + 46,080 draws).
  np.testing.assert_array_equal(np.bincount(length, minlength=10)[5:], [1440, 5328, 47952, 72576,
                                                                        127872])
  assert np.sum((length == 9) & (win == 1)) == 81792
  assert len({tuple(m) for m in moves}) == len(moves)  # all distinct


def test_every_game_ends_at_its_first_terminal_position():
  moves, length, win = ttt.all_games()
  boards = jnp.asarray(ttt.boards_of(moves))                       # [G, 10, 9]
  over = jax.jit(jax.vmap(jax.vmap(ttt.is_over)))(boards)           # [G, 10]
  first_over = np.argmax(np.asarray(over), axis=1)
  np.testing.assert_array_equal(first_over, length)
  np.testing.assert_array_equal(jax.jit(jax.vmap(ttt.winner))(boards[:, -1]), win)
  # Moves alternate x, o, x, ...: after k moves x has ceil(k/2) marks.
  counts = np.asarray(jnp.sum(boards == 1, -1))[:, :10]
  k = np.minimum(np.arange(10)[None], length[:, None])
  np.testing.assert_array_equal(counts, (k + 1) // 2)


def test_rules_by_hand():
  b = lambda s: jnp.array([{".": 0, "x": 1, "o": 2}[c] for c in s])
  assert int(ttt.winner(b("xxx" "oo." "..."))) == 1
  assert int(ttt.winner(b("o.x" ".ox" "x.o"))) == 2          # diagonal
  assert int(ttt.winner(b("xox" "xoo" "oxx"))) == 0
  assert bool(ttt.is_over(b("xox" "xoo" "oxx")))              # full: a draw
  assert not bool(ttt.is_over(b("xo." "..." "...")))
  np.testing.assert_array_equal(ttt.score(jnp.array([1, 0, 2])), [1.0, 0.5, 0.0])


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
  w = np.asarray(lib.sample_windows(jax.random.PRNGKey(0), games, 256))
  # The last block's outcome token equals every outcome token before it in the window.
  last = w[:, 20]
  for j in (0, 10):
    np.testing.assert_array_equal(np.where(w[:, j] == ttt.BOS, last, w[:, j]), last)
  # Each window's boards differ by at most one mark from block to block.
  cells = w.reshape(-1, 3, 10)[:, :, 1:]
  valid = w.reshape(-1, 3, 10)[:, :-1, 0] != ttt.BOS
  changed = np.sum(cells[:, 1:] != cells[:, :-1], -1)
  assert np.all(np.where(valid, changed == 1, True))


def test_experiment_writes_rows(tmp_path):
  from experiments import tictactoe
  c = tictactoe.get_config("quick")
  c.model = dict(width=16, num_layers=1, num_heads=2)
  c.pretrain_updates, c.finetune_updates, c.games_per_round, c.eval_games = 10, 5, 32, 32
  c.rounds = 1
  tictactoe.run(c, str(tmp_path), log=lambda *_: None)
  rows = json.load(open(tmp_path / "results.json"))["rows"]
  assert [(r["round"], r["conditioned"]) for r in rows] == [(0, True), (1, True), (0, False),
                                                           (1, False)]
  for r in rows:
    assert 0 <= r["p1_score"] <= 1 and 0 <= r["p2_score"] <= 1 and r["kl"] >= 0


def test_play_in_chunks_is_the_same_games():
  model, params = _tiny_model()
  games, stats = lib.play(model, params, jax.random.PRNGKey(2), 40, False, True)
  chunked, chunked_stats = lib.play(model, params, jax.random.PRNGKey(2), 40, False, True,
                                    chunk=16)
  jax.tree.map(np.testing.assert_array_equal, games, chunked)
  for k in stats:
    np.testing.assert_allclose(stats[k], chunked_stats[k], rtol=1e-5)
