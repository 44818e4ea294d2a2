"""Tic-tac-toe Decision-Transformer incoherence and self-retraining ([D] §4.2, Table 2, App. B).

  python -m launch.reproduce tictactoe --workdir=runs/tictactoe [--quick]

The config is `get_config('gpu' | 'quick' | 'cpu')` of experiments/tictactoe_retrain.py (the
launcher loads it). Pretrain on all 255,168 games (x first; with `both_sides` also each game
with the symbols swapped, so x also appears as the second mover), then fine-tune: play
`games_per_round` games as first mover against the random opponent, relabel them with their
outcome, fine-tune, repeat. `protocol = "paper"` ([D] §4.2): one model, fine-tuned on the
victory-conditioned player's games, scored both ways (conditioned and unconditioned) after each
round. `protocol = "separate"`: the victory-conditioned and the unconditioned player each
fine-tuned on its own games (a model refit on its own unconditioned play is a fixed point, so
that row stays flat by construction). Scores are over `eval_games` games with the model first
(P1) and second (P2). Prints them beside the exact reference (the perfect model of the same
data through the same protocol, `exact_reference`) and [D] Table 2.
Rules and encoding: `causal_meta.tasks.tictactoe`.

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
import time
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from causal_meta import plots, train
from causal_meta.agents.transformer import Block
from causal_meta.reproduce import cell, figure_path, mean_std, seed_runs, write_results
from causal_meta.tabular import tictactoe_exact as exact
from causal_meta.tasks import tictactoe as ttt

Array = jax.Array
OUTCOMES = jnp.array([ttt.X_WINS, ttt.O_WINS, ttt.DRAW])  # g index 0 = victory for x

PAPER = {  # [D] Table 2: (P1 score, P2 score, P1 KL, P2 KL) per iteration.
    False: [(0.5725, 0.3325, 0.0425, 0.055), (0.725, 0.3275, 0.1025, 0.03),
            (0.7675, 0.3175, 0.115, 0.03)],
    True: [(0.7125, 0.615, 4.48, 6.0625), (0.8225, 0.6775, 4.0475, 5.195),
           (0.8325, 0.6825, 4.625, 5.6775)],
}


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


def sample_windows(key: Array, games: Games, batch: int,
                   board_weights: tuple[float, ...] | None = None) -> tuple[Array, Array]:
  """`batch` windows drawn from all (game, board k) positions: uniformly, or with probability
  ∝ board_weights[k] (10 weights, one per board k = 0 … 9). Returns (windows int32 [batch, 30],
  weights float32 [batch]): uniform probability / drawn probability, so that the weighted mean
  of a window's loss estimates the uniform mean without bias (`window_loss`); all 1 when
  uniform. Drawing more windows where the model is far from the data changes which windows a
  minibatch spends its updates on, not what is minimised."""
  k_game, k_pos = jax.random.split(key)
  w = jnp.asarray(board_weights or (1.0,) * ttt.MAX_BOARDS, jnp.float32)
  valid = jnp.arange(ttt.MAX_BOARDS)[None] < games.num_boards[:, None]  # [G, 10]
  per_game = jnp.sum(jnp.where(valid, w, 0.0), 1)
  g = jax.random.choice(k_game, per_game.shape[0], (batch,), p=per_game / jnp.sum(per_game))
  k = jax.random.categorical(k_pos, jnp.where(valid[g], jnp.log(w), -jnp.inf))
  weights = jnp.sum(per_game) / jnp.sum(games.num_boards) / w[k]
  return jax.vmap(game_window, (None, 0, 0))(games, g, k), weights


def window_loss(model, params, windows, weights=None) -> Array:
  """Mean NLL per token of the last block's 10 tokens given the 20 before; each window's
  weighted by `weights` [batch] if given (`sample_windows`)."""
  full, _ = block_log_probs(model, params, windows)
  return -jnp.mean(full if weights is None else weights * full) / ttt.BLOCK


class Windows(NamedTuple):
  """Every distinct training window of a data set once (`unique_windows`): tokens int32
  [U, 30]; count float64 [U], the (game, board) positions that show it (Σ = Σ num_boards);
  floor float64 [U], -log of the data's own probability of its last block given the 20 tokens
  before (the perfect model's NLL); board int [U], k, the moves on its last board."""
  tokens: Array
  count: np.ndarray
  floor: np.ndarray
  board: np.ndarray


def unique_windows(games: Games) -> Windows:
  """`Windows` of `games`; for the runner's data set U = 157,585 of 4,722,912 positions."""
  context, keys, g, k = exact.window_keys(games.boards, games.num_boards, games.outcome)
  _, first, counts = np.unique(keys, return_index=True, return_counts=True)
  _, context_of, context_counts = np.unique(context, return_inverse=True, return_counts=True)
  tokens = jax.jit(jax.vmap(game_window, (None, 0, 0)))(games, jnp.asarray(g[first]),
                                                          jnp.asarray(k[first]))
  floor = -np.log(counts / context_counts[context_of.reshape(-1)[first]])
  return Windows(tokens, counts.astype(np.float64), floor, k[first])


@functools.partial(jax.jit, static_argnames=("model", "chunk"))
def window_nll(model, params, tokens: Array, chunk: int = 4096) -> Array:
  """NLL in nats of each window's last block given the 20 tokens before: [U] for tokens
  [U, 30], `chunk` windows at a time."""
  n = tokens.shape[0]
  rows = jnp.concatenate([tokens, jnp.repeat(tokens[:1], -n % chunk, 0)])
  rows = rows.reshape(-1, chunk, ttt.CONTEXT)
  return -jax.lax.map(lambda w: block_log_probs(model, params, w)[0], rows).reshape(-1)[:n]


def data_loss(model, params, windows: Windows, chunk: int = 4096) -> tuple[float, np.ndarray]:
  """The training loss over the whole data set, not a minibatch: Σ count · NLL / Σ count per
  token of the last block. Its minimum over models is the data's entropy floor
  (`tabular.tictactoe_exact.entropy_floor`); the excess is KL(data ‖ model) per token. Returns
  (loss, by_board float [10]): the part of the excess from windows ending with board k (they
  sum to loss - floor)."""
  nll = np.asarray(window_nll(model, params, windows.tokens, chunk), np.float64)
  total = windows.count.sum() * ttt.BLOCK
  by_board = np.bincount(windows.board, windows.count * (nll - windows.floor),
                         minlength=ttt.MAX_BOARDS) / total
  return float(np.sum(windows.count * nll) / total), by_board


def make_fit(model, optimizer, batch: int, num_updates: int, mix: float = 0.0,
             board_weights: tuple[float, ...] | None = None):
  """jit(K updates via lax.scan): fit(params, opt_state, key, games, original) ->
  (params, opt_state, metrics: dict(loss [K])). Each window comes from `original` with
  probability `mix`; or `board_weights` weighs the draw (`sample_windows`)."""
  if mix > 0.0 and board_weights is not None:
    raise ValueError("tictactoe: make_fit takes mix or board_weights, not both")

  def sample(key, games, original):
    k_new, k_old, k_mix = jax.random.split(key, 3)
    w, weights = sample_windows(k_new, games, batch, board_weights)
    if mix > 0.0:
      use_old = jax.random.uniform(k_mix, (batch, 1)) < mix
      w = jnp.where(use_old, sample_windows(k_old, original, batch)[0], w)
    return w, weights

  loss = lambda params, b: (window_loss(model, params, *b), {})
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


# ------------------------------------------------------------------------------------------------
# The experiment: pretrain, then rounds of play and fine-tuning, per player.

def _evaluate(model, params, key, c, conditioned):
  """Scores and KL of one player over `c.eval_games` games as first (p1) and second (p2) mover."""
  out = {}
  for name, first in (("p1", True), ("p2", False)):
    _, s = play(model, params, jax.random.fold_in(key, int(first)), c.eval_games, conditioned,
                first)
    out.update({f"{name}_{k}": float(v) for k, v in s.items()})
  out["kl"] = (out["p1_kl"] + out["p2_kl"]) / 2
  out["p1_score"], out["p2_score"] = out.pop("p1_score"), out.pop("p2_score")
  return out


@functools.lru_cache(maxsize=4)
def _exact_rows(rounds: int, both_sides: bool, protocol: str) -> tuple:
  cond = exact.protocol(rounds, both_sides, "conditioned")
  uncond = cond if protocol == "paper" else exact.protocol(rounds, both_sides, "unconditioned")
  keep = ("round", "conditioned", "p1_score", "p2_score", "p1_kl", "p2_kl")
  return tuple({k: r.get(k) for k in keep} for r in
               [r for r in cond if r["conditioned"]] + [r for r in uncond if not r["conditioned"]])


def exact_reference(c: ml_collections.ConfigDict) -> list[dict]:
  """[D] Table 2's exact column for config `c`: the perfect model of the same data put through
  the same protocol (`tabular.tictactoe_exact.protocol`: fine-tuned to perfection on the
  victory-conditioned player's games, or for "separate" the unconditioned rows on the
  unconditioned player's), in `run`'s row order. Each row: round, conditioned, p1_score,
  p2_score, p1_kl, p2_kl (KL(π_cond ‖ π) per decision; P2 entries None without both_sides: the
  data never show x moving second). Seconds on one CPU core."""
  return [dict(r) for r in _exact_rows(c.rounds, c.both_sides, c.protocol)]


def check(c: ml_collections.ConfigDict) -> None:
  """ValueError naming what is wrong in `c`: the protocol, the sizes, and the model, whose
  shapes are traced (`jax.eval_shape`: nothing is compiled or trained)."""
  if c.protocol not in ("paper", "separate"):
    raise ValueError(f"tictactoe: protocol must be paper or separate, got {c.protocol!r}")
  for name in ("batch_size", "pretrain_updates", "finetune_updates", "games_per_round",
               "eval_games", "rounds"):
    if not isinstance(c[name], int) or c[name] < 1:
      raise ValueError(f"tictactoe: {name} must be a positive integer, got {c[name]!r}")
  seeds = c.get("seeds", (c.seed,))
  if not seeds or not all(isinstance(s, int) for s in seeds):
    raise ValueError(f"tictactoe: seeds must be a non-empty tuple of integers, got {seeds!r}")
  if c.schedule not in ("constant", "cosine"):
    raise ValueError(f"tictactoe: schedule must be constant or cosine, got {c.schedule!r}")
  if not isinstance(c.warmup_updates, int) or not 0 <= c.warmup_updates < c.pretrain_updates:
    raise ValueError(f"tictactoe: warmup_updates must be an integer in [0, pretrain_updates), "
                     f"got {c.warmup_updates!r}")
  weights = c.get("board_weights")
  if weights is not None and (len(weights) != ttt.MAX_BOARDS or not all(w > 0 for w in weights)):
    raise ValueError(f"tictactoe: board_weights must be None or {ttt.MAX_BOARDS} positive "
                     f"numbers, one per board k = 0 … 9, got {weights!r}")
  for name in ("learning_rate", "finetune_learning_rate"):
    if not c[name] > 0:
      raise ValueError(f"tictactoe: {name} must be positive, got {c[name]!r}")
  if c.model.width % c.model.num_heads:
    raise ValueError(f"tictactoe: model.width {c.model.width} must divide by model.num_heads "
                     f"{c.model.num_heads}")
  jax.eval_shape(DecisionTransformer(**c.model).init, jax.random.PRNGKey(0),
                 jnp.zeros((ttt.CONTEXT,), jnp.int32))


def run(c: ml_collections.ConfigDict, workdir: str | None = None, log=print) -> dict:
  """The whole tic-tac-toe experiment for config `c` (experiments/tictactoe_retrain.py); writes
  workdir/results.json and figures/ unless workdir is None. Returns the results dict."""
  check(c)
  start = time.time()
  key = jax.random.PRNGKey(c.seed)
  model = DecisionTransformer(**c.model)
  games = all_games_dataset(c.both_sides)
  params = model.init(jax.random.fold_in(key, 1), jnp.zeros((ttt.CONTEXT,), jnp.int32))
  params = params["params"]
  schedule = c.learning_rate
  if c.schedule == "cosine":
    schedule = optax.warmup_cosine_decay_schedule(0.0, c.learning_rate, c.warmup_updates,
                                                  c.pretrain_updates)
  pre_optimizer = optax.adam(schedule)
  weights = c.get("board_weights")
  fit = make_fit(model, pre_optimizer, c.batch_size, c.pretrain_updates,
                 board_weights=None if weights is None else tuple(weights))
  params, _, metrics = fit(params, pre_optimizer.init(params), jax.random.fold_in(key, 2),
                           games, games)
  pretrain = dict(last_batch_loss=float(metrics["loss"][-1]))
  log(f"pretrained on {int(games.outcome.shape[0])} game sequences: final loss "
      f"{pretrain['last_batch_loss']:.4f} nats/token ({time.time() - start:.0f} s)")
  if c.data_loss:
    pretrain["data_loss"], by_board = data_loss(model, params, unique_windows(games))
    pretrain["floor"] = exact.entropy_floor(firsts=(1, 2) if c.both_sides else (1,))[
        "nats_per_token"]
    pretrain.update({f"excess_board_{k}": float(v) for k, v in enumerate(by_board)})
    log(f"loss over the whole data set {pretrain['data_loss']:.5f} nats/token, "
        f"{pretrain['data_loss'] - pretrain['floor']:.5f} above its floor "
        f"{pretrain['floor']:.5f} ({time.time() - start:.0f} s); of that excess, by the moves "
        "k on the predicted board: "
        + ", ".join(f"{k}: {v:.5f}" for k, v in enumerate(by_board)))
  optimizer = optax.adam(c.finetune_learning_rate)
  fine = make_fit(model, optimizer, c.batch_size, c.finetune_updates, c.mix)
  eval_key = jax.random.fold_in(key, 0x5EED)
  rows = []

  def evaluate(p, r, conditioned):
    row = dict(round=r, conditioned=conditioned, **_evaluate(model, p, eval_key, c, conditioned))
    rows.append(row)
    log(f"{'conditioned' if conditioned else 'unconditioned':13s} round {r}: P1 "
        f"{row['p1_score']:.4f}  P2 {row['p2_score']:.4f}  KL(π_cond‖π) P1 {row['p1_kl']:.4f}"
        f" P2 {row['p2_kl']:.4f} ({time.time() - start:.0f} s)")

  def fine_tune(p, r, conditioned):
    k = jax.random.fold_in(key, 100 * r + 10 + conditioned)
    own, _ = play(model, p, k, c.games_per_round, conditioned, True)  # model first
    return fine(p, optimizer.init(p), jax.random.fold_in(k, 1), own, games)[0]

  if c.protocol == "paper":  # one model, fine-tuned on its victory-conditioned games
    p = params
    for r in range(c.rounds + 1):
      for conditioned in (True, False):
        evaluate(p, r, conditioned)
      if r < c.rounds:
        p = fine_tune(p, r, True)
  else:  # "separate": each player fine-tuned on its own games
    for conditioned in (True, False):
      p = params
      for r in range(c.rounds + 1):
        evaluate(p, r, conditioned)
        if r < c.rounds:
          p = fine_tune(p, r, conditioned)
  rows.sort(key=lambda row: (not row["conditioned"], row["round"]))
  results = dict(experiment="tictactoe", paper="[D] Table 2", config=c.to_dict(), rows=rows,
                 pretrain=pretrain, exact_rows=exact_reference(c),
                 paper_table={("conditioned" if k else "unconditioned"): v
                              for k, v in PAPER.items()},
                 wall_seconds=time.time() - start, device=jax.devices()[0].device_kind)
  if workdir:
    write(workdir, results)
  return results


def over_seeds(per_seed: list[dict]) -> dict:
  """The rows and pretraining losses of several runs (one per seed) as (mean, std) pairs."""
  def stats(dicts):
    return {k: v if k in ("round", "conditioned") else mean_std([d[k] for d in dicts])
            for k, v in dicts[0].items()}
  return dict(seeds=[r["config"]["seed"] for r in per_seed],
              rows=[stats([r["rows"][i] for r in per_seed])
                    for i in range(len(per_seed[0]["rows"]))],
              pretrain=stats([r["pretrain"] for r in per_seed]),
              exact_rows=per_seed[0]["exact_rows"],
              paper_table=per_seed[0]["paper_table"],
              wall_seconds=[r["wall_seconds"] for r in per_seed])


def format_table(results: dict) -> str:
  """Markdown table, one row per player and fine-tuning round; for each of P1 score, P2 score,
  P1 KL and P2 KL (KL(π_cond ‖ π) per decision): ours (one run, or mean ± std over seeds), the
  exact reference (`exact_reference`: the perfect model through the same protocol) and [D]
  Table 2."""
  head = [f"{who} {what}" for what in ("P1", "P2", "P1 KL", "P2 KL")
          for who in ("ours", "exact", "[D]")]
  lines = ["| player | iteration | " + " | ".join(head) + " |", "|---" * (len(head) + 2) + "|"]
  names = ["pretrained", "1st fine-tune", "2nd fine-tune"]
  exact_rows = {(r["conditioned"], r["round"]): r for r in results.get("exact_rows", [])}
  for r in results["rows"]:
    paper = PAPER[r["conditioned"]][r["round"]] if r["round"] < 3 else (None,) * 4
    ex = exact_rows.get((r["conditioned"], r["round"]), {})
    entries = []
    for i, k in enumerate(("p1_score", "p2_score", "p1_kl", "p2_kl")):
      entries += [cell(r[k]), cell(ex.get(k)), cell(paper[i])]
    name = names[r["round"]] if r["round"] < 3 else f"fine-tune {r['round']}"
    lines.append(f"| {'victory-conditioned' if r['conditioned'] else 'unconditioned'} | {name} | "
                 + " | ".join(entries) + " |")
  return "\n".join(lines)


def write(workdir: str, results: dict) -> None:
  """workdir/results.json and figures/tictactoe_scores.png (scores per round; the means where
  the entries are (mean, std) over seeds)."""
  write_results(workdir, results)
  mean = lambda x: x[0] if isinstance(x, (tuple, list)) else x
  series = {}
  for cond in (True, False):
    rows = [r for r in results["rows"] if r["conditioned"] == cond]
    name = "conditioned" if cond else "unconditioned"
    series[f"{name} P1"] = [mean(r["p1_score"]) for r in rows]
    series[f"{name} P2"] = [mean(r["p2_score"]) for r in rows]
  plots.curves(figure_path(workdir, "tictactoe_scores.png"), series,
               "fine-tuning round", "score (win 1, draw ½)", "Tic-tac-toe: scores per round",
               x=list(range(len(series["conditioned P1"]))))


def reproduce(workdir: str, quick: bool = False,
              config: ml_collections.ConfigDict | None = None) -> dict:
  """`python -m launch.reproduce tictactoe`: `run` with `config`, experiments/tictactoe_retrain.py's
  get_config('gpu') (minGPT size), or get_config('quick') (CPU) with --quick. Prints the table
  (ours, exact, [D]).
  With several `config.seeds`, one run per seed in workdir/seed_S and the table of mean ± std
  in workdir/results.json."""
  del quick  # the config's size
  if config is None:
    raise ValueError("tictactoe: pass get_config(...) of experiments/tictactoe_retrain.py as "
                     "config")
  seeds = tuple(config.get("seeds", (config.seed,)))
  if len(seeds) == 1:
    config.seed = seeds[0]
    results = run(config, workdir)
  else:
    results = dict(experiment="tictactoe", paper="[D] Table 2", config=config.to_dict(),
                   **over_seeds(seed_runs(config, workdir, run)))
    write(workdir, results)
    print(f"mean ± std over seeds {', '.join(map(str, seeds))}:")
    p = results["pretrain"]
    if "data_loss" in p:
      print(f"loss over the whole data set {cell(p['data_loss'])} nats/token, floor "
            f"{cell(p['floor'][0])}")
  print(format_table(results))
  return results
