"""Tic-tac-toe ([D] §4.2, App. B): rules, the set of all games, the DT encoding.

The board is int [9] (row-major), 0 = empty, 1 = x, 2 = o. The agent always plays x against a
uniformly random opponent; who moves first is random; the agent scores 1 for a win, ½ for a
draw, 0 for a loss. The game ends when a line of three is made or the board is full.

This is a two-player game whose "observation" is a board, not a finite-θ task, so it does not
implement the `Task` interface (there is no latent and no expert); its rules are pure JAX
functions used by `causal_meta.reproduce.tictactoe_retrain`, and `all_games()` enumerates every
legal game.

Decision-Transformer encoding ([D] App. B): vocabulary `x o . # O D $ E` (three cell symbols;
the outcome: x wins, o wins, draw; BOS; EOS). A game is the sequence of its boards (the empty
board, then the board after each move), each preceded by the game's outcome token: a *block* of
10 tokens. The model sees 30 tokens = 3 blocks; blocks before the start are BOS ($) padding.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

# Tokens, in the paper's order.
X, O, EMPTY, X_WINS, O_WINS, DRAW, BOS, EOS = range(8)
VOCAB = 8
SYMBOLS = "xo.#OD$E"
BLOCK = 10           # outcome token + 9 cells
CONTEXT = 3 * BLOCK  # the 30-token context window
MAX_BOARDS = 10      # the empty board + at most 9 moves
LINES = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8],
                  [0, 4, 8], [2, 4, 6]])
# Board value (0 empty, 1 x, 2 o) -> cell token.
_CELL_TOKEN = np.array([EMPTY, X, O])
# Winner (0 none/draw, 1 x, 2 o) -> outcome token.
_OUTCOME_TOKEN = np.array([DRAW, X_WINS, O_WINS])


def winner(board) -> jax.Array:
  """0 (no line), 1 (x has a line) or 2 (o has a line): int32 []. Works on [..., 9]."""
  lines = jnp.asarray(board)[..., LINES]  # [..., 8, 3]
  x = jnp.any(jnp.all(lines == 1, -1), -1)
  o = jnp.any(jnp.all(lines == 2, -1), -1)
  return jnp.where(x, 1, jnp.where(o, 2, 0)).astype(jnp.int32)


def is_over(board) -> jax.Array:
  """bool []: someone has a line or the board is full."""
  return jnp.logical_or(winner(board) > 0, jnp.all(jnp.asarray(board) != 0, -1))


def score(win) -> jax.Array:
  """x's score for a finished game's winner: 1 win, ½ draw, 0 loss."""
  return jnp.where(win == 1, 1.0, jnp.where(win == 2, 0.0, 0.5))


def outcome_token(win):
  return jnp.asarray(_OUTCOME_TOKEN)[win]


def cell_tokens(board):
  """[..., 9] board -> [..., 9] cell tokens."""
  return jnp.asarray(_CELL_TOKEN)[board]


def block(board, outcome) -> jax.Array:
  """One 10-token block: the outcome token then the 9 cells. board [..., 9], outcome [...]."""
  outcome = jnp.broadcast_to(jnp.asarray(outcome, jnp.int32), board.shape[:-1])
  return jnp.concatenate([outcome[..., None], cell_tokens(board)], -1).astype(jnp.int32)


def window(boards3, valid3, outcome) -> jax.Array:
  """The 30-token context ending with a board: boards3 [3, 9] (oldest first), valid3 bool [3]
  (False = before the game: a $ block), outcome token []. -> int32 [30]."""
  blocks = jnp.where(valid3[:, None], block(boards3, outcome), BOS)
  return blocks.reshape(CONTEXT)


def decode(tokens) -> str:
  return "".join(SYMBOLS[int(t)] for t in np.asarray(tokens).reshape(-1))


# ------------------------------------------------------------------------------------------------
# Every legal game (host-side, once).

@functools.lru_cache(maxsize=None)
def all_games():
  """Every legal game with x moving first, by depth-first enumeration.

  Returns (moves int8 [G, 9] (cell per ply, -1 after the end), length int32 [G],
  winner int8 [G] (0 draw, 1 x, 2 o)). G = 255,168.
  """
  moves, lengths, winners = [], [], []
  board, seq = [0] * 9, []

  def line(p):
    return any(board[a] == p and board[b] == p and board[c] == p for a, b, c in LINES)

  def visit(player):
    for cell in range(9):
      if board[cell]:
        continue
      board[cell] = player
      seq.append(cell)
      if line(player) or len(seq) == 9:
        moves.append(seq + [-1] * (9 - len(seq)))
        lengths.append(len(seq))
        winners.append(player if line(player) else 0)
      else:
        visit(3 - player)
      seq.pop()
      board[cell] = 0

  visit(1)
  return (np.array(moves, np.int8), np.array(lengths, np.int32), np.array(winners, np.int8))


def boards_of(moves: np.ndarray, first_player: int = 1) -> np.ndarray:
  """Board sequences of games: moves int [G, 9] (-1 padded) -> int8 [G, 10, 9]; board k is the
  position after k moves (repeated after the end). Players alternate from `first_player`."""
  G = moves.shape[0]
  boards = np.zeros((G, MAX_BOARDS, 9), np.int8)
  for k in range(9):
    player = first_player if k % 2 == 0 else 3 - first_player
    nxt = boards[:, k].copy()
    played = moves[:, k] >= 0
    nxt[played, moves[played, k]] = player
    boards[:, k + 1] = nxt
  return boards
