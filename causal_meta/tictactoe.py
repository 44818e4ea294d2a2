"""A Decision-Transformer-style predictor of tic-tac-toe games and its self-retraining
([D] §4.2, Table 2, App. B). Rules and encoding: `causal_meta.tasks.tictactoe`.

Model: a causal transformer over 30-token windows (3 blocks of outcome token + board). It
predicts every token, so it models the player's moves, the opponent's moves and the outcome.

Playing: the model's probability of a move is its probability of the block that holds the board
after that move (10 or 9 tokens, teacher-forced), renormalised over the legal moves:
  victory-conditioned  π_cond(a | s) ∝ P(board_a | context with every outcome token = '#', '#')
  unconditioned        π(a | s)      ∝ Σ_g P(g, blocks so far | g) P(g, board_a | context_g)
i.e. the unconditioned policy is the model's own marginal over the unknown outcome g (the game
likelihood under each g is tracked along the game), which is what ancestral sampling of the
whole sequence does. The empirical incoherence is KL(π_cond ‖ π) averaged over the player's
decisions. Everything is one `lax.scan` over the 9 plies, vmapped over games, under `jit`.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from causal_meta import train
from causal_meta.agents.transformer import Block
from causal_meta.tasks import tictactoe as ttt

Array = jax.Array
OUTCOMES = jnp.array([ttt.X_WINS, ttt.O_WINS, ttt.DRAW])  # g index 0 = victory for x


class DecisionTransformer(nn.Module):
  """Token + position embeddings, `num_layers` pre-LN blocks, LN, vocabulary head."""
  width: int = 192
  num_layers: int = 6
  num_heads: int = 6

  @nn.compact
  def __call__(self, tokens):
    """int32 [..., L] -> logits [..., L, VOCAB] (each position predicts the next token)."""
    L = tokens.shape[-1]
    x = nn.Embed(ttt.VOCAB, self.width)(tokens)
    x = x + self.param("pos_embed", nn.initializers.normal(0.02), (ttt.CONTEXT, self.width))[:L]
    flat = x.reshape((-1, L, self.width))
    for _ in range(self.num_layers):
      flat = jax.vmap(Block(self.width, self.num_heads))(flat)
    return nn.Dense(ttt.VOCAB)(nn.LayerNorm()(flat)).reshape(tokens.shape + (ttt.VOCAB,))


def block_log_probs(model, params, windows) -> tuple[Array, Array]:
  """log P of the last block of each window: (with outcome token, cells only), each [...]."""
  logits = model.apply({"params": params}, windows)
  logp = jax.nn.log_softmax(logits[..., 2 * ttt.BLOCK - 1:-1, :])  # predicts tokens 20..29
  tok = jnp.take_along_axis(logp, windows[..., 2 * ttt.BLOCK:, None], -1)[..., 0]  # [..., 10]
  return jnp.sum(tok, -1), jnp.sum(tok[..., 1:], -1)


# ------------------------------------------------------------------------------------------------
# Data: games as board sequences with an outcome token; training windows sampled from them.

class Games(NamedTuple):
  """boards int8 [G, 10, 9] (board k after k moves); num_boards int32 [G]; outcome int32 [G]
  (token '#', 'O' or 'D')."""
  boards: Array
  num_boards: Array
  outcome: Array


def all_games_dataset(both_sides: bool = True) -> Games:
  """The 255,168 games (x first); with both_sides, also each game with the symbols swapped
  (o first, x second), so the model sees positions where x moves second."""
  moves, length, win = ttt.all_games()
  boards = ttt.boards_of(moves, first_player=1)
  out = np.asarray(ttt._OUTCOME_TOKEN)[win]
  if both_sides:
    swapped = np.where(boards == 0, 0, 3 - boards).astype(np.int8)
    boards = np.concatenate([boards, swapped])
    out = np.concatenate([out, np.asarray(ttt._OUTCOME_TOKEN)[np.where(win == 0, 0, 3 - win)]])
    length = np.concatenate([length, length])
  return Games(jnp.asarray(boards), jnp.asarray(length + 1, jnp.int32), jnp.asarray(out, jnp.int32))


def game_window(games: Games, g: Array, k: Array) -> Array:
  """The 30-token window ending with board k of game g: int32 [30]."""
  idx = k + jnp.arange(-2, 1)
  boards3 = games.boards[g, jnp.maximum(idx, 0)].astype(jnp.int32)
  return ttt.window(boards3, idx >= 0, games.outcome[g])


def sample_windows(key: Array, games: Games, batch: int) -> Array:
  """`batch` windows drawn uniformly from all (game, board) positions: int32 [batch, 30]."""
  k_game, k_pos = jax.random.split(key)
  weights = games.num_boards.astype(jnp.float32)
  g = jax.random.choice(k_game, weights.shape[0], (batch,), p=weights / jnp.sum(weights))
  k = jnp.floor(jax.random.uniform(k_pos, (batch,)) * games.num_boards[g]).astype(jnp.int32)
  return jax.vmap(game_window, (None, 0, 0))(games, g, k)


def window_loss(model, params, windows) -> Array:
  """Mean NLL of the last block's 10 tokens given the 20 before."""
  full, _ = block_log_probs(model, params, windows)
  return -jnp.mean(full) / ttt.BLOCK


def make_fit(model, optimizer, batch: int, num_updates: int, mix: float = 0.0):
  """jit(K updates via lax.scan): fit(params, opt_state, key, games, original) ->
  (params, opt_state, metrics: dict(loss [K])). Each window comes from `original` with
  probability `mix`."""
  def sample(key, games, original):
    k_new, k_old, k_mix = jax.random.split(key, 3)
    w = sample_windows(k_new, games, batch)
    if mix > 0.0:
      use_old = jax.random.uniform(k_mix, (batch, 1)) < mix
      w = jnp.where(use_old, sample_windows(k_old, original, batch), w)
    return w

  loss = lambda params, w: (window_loss(model, params, w), {})
  return train.make_data_fit(loss, sample, optimizer, num_updates)


# ------------------------------------------------------------------------------------------------
# Play against the uniformly random opponent.

def _kl(log_p, log_q, legal):
  p = jnp.exp(log_p)
  return jnp.sum(jnp.where(legal, p * (log_p - log_q), 0.0))


def play_one(model, params, key: Array, conditioned: bool, x_first: Array):
  """One game; the model plays x. Returns (Games row fields, score, kl_sum, decisions)."""
  def windows_for(history, k, board, mover):
    """[3 outcomes, 9 cells, 30]: windows ending with board k+1 = board + mover's symbol."""
    prev = history[jnp.maximum(k - 1, 0)]
    valid = jnp.array([True, True, True]).at[0].set(k >= 1)

    def cand(cell, g):
      return ttt.window(jnp.stack([prev, board, board.at[cell].set(mover)]), valid, g)
    cells = jnp.arange(9)
    return jax.vmap(lambda g: jax.vmap(lambda c: cand(c, g))(cells))(OUTCOMES)

  def ply(carry, t):
    history, k, board, done, loghist, kl_sum, decisions = carry
    mover_is_x = jnp.where(x_first, t % 2 == 0, t % 2 == 1)
    mover = jnp.where(mover_is_x, 1, 2)
    full, cells = block_log_probs(model, params, windows_for(history, k, board, mover))  # [3, 9]
    legal = board == 0
    log_cond = jax.nn.log_softmax(jnp.where(legal, cells[0], -jnp.inf))
    log_marg = jax.nn.log_softmax(jnp.where(legal, jax.nn.logsumexp(loghist[:, None] + full, 0),
                                            -jnp.inf))
    logits = jnp.where(mover_is_x, log_cond if conditioned else log_marg,
                       jnp.where(legal, 0.0, -jnp.inf))
    cell = jax.random.categorical(jax.random.fold_in(key, t), logits)
    active = jnp.logical_not(done)
    decide = jnp.logical_and(active, mover_is_x)
    kl_sum = kl_sum + jnp.where(decide, _kl(log_cond, log_marg, legal), 0.0)
    decisions = decisions + decide
    new_board = board.at[cell].set(mover)
    loghist = jnp.where(active, loghist + full[:, cell], loghist)
    k = jnp.where(active, k + 1, k)
    history = jnp.where(active, history.at[k].set(new_board), history)
    board = jnp.where(active, new_board, board)
    done = jnp.logical_or(done, ttt.is_over(board))
    return (history, k, board, done, loghist, kl_sum, decisions), None

  empty = jnp.zeros((9,), jnp.int32)
  history = jnp.zeros((ttt.MAX_BOARDS, 9), jnp.int32)
  # Log-likelihood of the first block (the empty board) under each outcome g.
  first = jax.vmap(lambda g: ttt.window(jnp.stack([empty] * 3), jnp.array([False, False, True]),
                                        g))(OUTCOMES)
  loghist, _ = block_log_probs(model, params, first)
  init = (history, jnp.zeros((), jnp.int32), empty, jnp.zeros((), bool), loghist,
          jnp.zeros(()), jnp.zeros((), jnp.int32))
  (history, k, board, _, _, kl_sum, decisions), _ = jax.lax.scan(ply, init, jnp.arange(9))
  win = ttt.winner(board)
  game = (history.astype(jnp.int8), k + 1, ttt.outcome_token(win))
  return game, ttt.score(win), kl_sum, decisions


@functools.partial(jax.jit, static_argnums=(0, 3))
def _play_games(model, params, keys: Array, conditioned: bool, x_first: Array):
  return jax.vmap(lambda k, f: play_one(model, params, k, conditioned, f))(keys, x_first)


def play(model, params, key: Array, num_games: int, conditioned: bool, x_first: Array,
         chunk: int = 2000):
  """`num_games` games; x_first: bool [] or [num_games]. Returns (Games, dict of scalars:
  score, kl (mean over the player's decisions), win/draw/loss rates). Games are played
  `chunk` at a time (memory: 27 candidate windows per ply); the result does not depend on it."""
  x_first = jnp.broadcast_to(jnp.asarray(x_first, bool), (num_games,))
  keys = jax.random.split(key, num_games)
  parts = [_play_games(model, params, keys[i:i + chunk], conditioned, x_first[i:i + chunk])
           for i in range(0, num_games, chunk)]
  rows, scores, kl_sum, dec = jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)
  stats = dict(score=jnp.mean(scores), kl=jnp.sum(kl_sum) / jnp.maximum(jnp.sum(dec), 1),
               win=jnp.mean(scores == 1.0), draw=jnp.mean(scores == 0.5),
               loss=jnp.mean(scores == 0.0))
  return Games(*rows), stats
