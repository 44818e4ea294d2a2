"""Tic-tac-toe rules ([D] §4.2, App. B; `causal_meta.tasks.tictactoe`): the set of all games,
their ends, the winner."""

import jax
import jax.numpy as jnp
import numpy as np

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
