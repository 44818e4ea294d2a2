"""Exact tic-tac-toe references for [D] Table 2 (§4.2, App. B), by enumeration in NumPy.

The *perfect model* of the pretraining data of `causal_meta.reproduce.tictactoe_retrain` (all
255,168 x-first games, plus with `both_sides` each game with the symbols swapped), its entropy
floor per predicted token, and [D]'s self-retraining protocol applied to that perfect model:
exact scores against the uniformly random opponent and exact KL(π_cond ‖ π). No sampling, no
training; everything is a recursion over the 9,040 non-terminal (board, first mover) states.

A model here is a Markov process over boards: `model[(board, first)]` is float64 [9], the
probability of each cell for whoever moves at `board` (board: tuple of 9 ints, 0 empty, 1 x,
2 o; first: the symbol that moved first, 1 or 2, which with the board says who moves). Every
conditional the decision transformer is asked for is this process's Bayes conditional:
  P(a | s)           = model[s][a]
  P(a | s, outcome g) = model[s][a] W_g(s + a) / W_g(s),  W_g(s) = P(outcome g | s) under model.
The uniform distribution over all games *is* such a process (P(a | s) = C(s + a) / C(s), C the
number of completions), and its conditionals depend on the game only through (board, first
mover), which the 30-token window shows (two boards reveal who moved last); so the windowed
transformer's best possible prediction is exactly this model's.

Outcome index g: 0 x wins ('#'), 1 o wins ('O'), 2 draw ('D') — the order of
`tictactoe_retrain.OUTCOMES`. Scores: 1 win, ½ draw, 0 loss, for x.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from causal_meta.tasks import tictactoe as ttt

Board = tuple  # 9 ints in {0, 1, 2}
State = tuple  # (board, first)
EMPTY_BOARD: Board = (0,) * 9
X_WINS, O_WINS, DRAW = 0, 1, 2
SCORE = np.array([1.0, 0.0, 0.5])  # x's score per outcome index
_LINES = [tuple(int(c) for c in line) for line in ttt.LINES]


# ------------------------------------------------------------------------------------------------
# Rules on tuples (host-side; the JAX rules are in `causal_meta.tasks.tictactoe`).

def winner(board: Board) -> int:
  """0 (no line), 1 (x has a line) or 2 (o has a line)."""
  for a, b, c in _LINES:
    if board[a] and board[a] == board[b] == board[c]:
      return board[a]
  return 0


def is_over(board: Board) -> bool:
  return winner(board) > 0 or 0 not in board


def outcome_index(board: Board) -> int:
  """Outcome index g of a finished board: 0 x wins, 1 o wins, 2 draw."""
  return (DRAW, X_WINS, O_WINS)[winner(board)]


def to_move(board: Board, first: int) -> int:
  """The symbol to move: the first mover when both have as many marks, else the other."""
  return first if board.count(1) == board.count(2) else 3 - first


def place(board: Board, cell: int, symbol: int) -> Board:
  return board[:cell] + (symbol,) + board[cell + 1:]


def legal(board: Board) -> np.ndarray:
  """bool [9]: the empty cells."""
  return np.array(board) == 0


def successors(state: State):
  """(cell, next state) for each legal move of the player to move."""
  board, first = state
  p = to_move(board, first)
  return [(c, (place(board, c, p), first)) for c in range(9) if board[c] == 0]


def states(start: Board = EMPTY_BOARD, firsts=(1, 2)) -> list:
  """Every non-terminal state reachable from `start` for each first mover, parents first."""
  seen, order = set(), []
  frontier = [(start, f) for f in firsts if not is_over(start)]
  while frontier:  # breadth first = by number of marks, so parents come first
    nxt = []
    for s in frontier:
      if s in seen:
        continue
      seen.add(s)
      order.append(s)
      nxt += [t for _, t in successors(s) if not is_over(t[0]) and t not in seen]
    frontier = nxt
  return order


# ------------------------------------------------------------------------------------------------
# The data set and its perfect model.

@functools.lru_cache(maxsize=None)
def completions(state: State) -> np.ndarray:
  """int64 [3]: the number of ways to finish the game from `state`, per outcome index."""
  board, _ = state
  if is_over(board):
    return np.eye(3, dtype=np.int64)[outcome_index(board)]
  return sum(completions(t) for _, t in successors(state))


@functools.lru_cache(maxsize=None)
def _total_moves(state: State) -> int:
  """Σ over the completions from `state` of their number of moves."""
  if is_over(state[0]):
    return 0
  return sum(int(completions(t).sum()) + _total_moves(t) for _, t in successors(state))


def data_model(start: Board = EMPTY_BOARD, firsts=(1, 2)) -> dict:
  """The perfect model of the data set {all games from `start`, for each first mover in
  `firsts`}: P(a | s) = C(s + a) / C(s). firsts=(1, 2) is `all_games_dataset(both_sides=True)`,
  (1,) is both_sides=False. Returns {state: float64 [9]}."""
  model = {}
  for s in states(start, firsts):
    p = np.zeros(9)
    for c, t in successors(s):
      p[c] = completions(t).sum()
    model[s] = p / p.sum()
  return model


def outcome_probs(model: dict, memo: dict | None = None) -> dict:
  """{state: float64 [3]} P(outcome g | state) under the process `model` (terminal boards too,
  as one-hot). `memo` may be shared between calls on the same model."""
  memo = {} if memo is None else memo

  def w(s):
    if s not in memo:
      if is_over(s[0]):
        memo[s] = np.eye(3)[outcome_index(s[0])]
      else:
        memo[s] = sum(model[s][c] * w(t) for c, t in successors(s) if model[s][c] > 0)
    return memo[s]

  for s in model:
    w(s)
  return memo


def conditional(model: dict, g: int, W: dict | None = None) -> dict:
  """{state: float64 [9]} P(a | s, outcome g) for the states where outcome g has positive
  probability (elsewhere the event is impossible and there is no conditional)."""
  W = outcome_probs(model) if W is None else W
  out = {}
  for s, p in model.items():
    if W[s][g] > 0:
      q = np.zeros(9)
      for c, t in successors(s):
        q[c] = p[c] * W[t][g]
      out[s] = q / W[s][g]
  return out


def policies(model: dict) -> tuple[dict, dict]:
  """(π, π_cond): x's unconditioned and victory-conditioned policies, {state: [9]} on the states
  where x moves. π_cond(a | s) = P(a | s, x wins); where x cannot win from s under the model,
  π_cond = π (conditioning on an impossible event carries no information; the runner's
  transformer has never seen such a window and answers something)."""
  cond = conditional(model, X_WINS)
  pi = {s: p for s, p in model.items() if to_move(*s) == 1}
  return pi, {s: cond.get(s, p) for s, p in pi.items()}


def kl(p: np.ndarray, q: np.ndarray) -> float:
  """KL(p ‖ q) in nats over the support of p (inf where q = 0 < p)."""
  m = p > 0
  if np.any(q[m] == 0):
    return math.inf
  return float(np.sum(p[m] * (np.log(p[m]) - np.log(q[m]))))


# ------------------------------------------------------------------------------------------------
# Entropy floor of the training loss.

def entropy_floor(start: Board = EMPTY_BOARD, firsts=(1, 2)) -> dict:
  """The data set's exact entropy per predicted token, in nats: the floor of
  `tictactoe_retrain.window_loss` averaged over its training windows.

  The runner draws windows uniformly over (game, board k) for k = 0 … length and scores the 10
  tokens of the last block (outcome token + board k). Under the perfect model the block
  probabilities along a game telescope to 1 / N (N games in the data set): block 0 gives
  P(g) = N_g / N, block 1 P(first board | g) (the window cannot tell who moves first), blocks
  k ≥ 2 give C_g(s_k) / C_g(s_{k-1}). So the floor is log N / (10 · mean(length + 1)).
  Returns dict(nats_per_token, games, positions, mean_length)."""
  games = sum(int(completions((start, f)).sum()) for f in firsts)
  moves = sum(_total_moves((start, f)) for f in firsts)
  positions = games + moves
  return dict(nats_per_token=math.log(games) * games / (ttt.BLOCK * positions), games=games,
              positions=positions, mean_length=moves / games)


def window_entropy(boards: np.ndarray, num_boards: np.ndarray, outcome: np.ndarray) -> float:
  """Brute force: the empirical conditional entropy, nats per token, of the last block of each
  training window given the two blocks before, over every (game, board k) window of a data set
  in `tictactoe_retrain.Games` layout (boards int [G, 10, 9], num_boards int [G], outcome token
  int [G]). Counts windows; no model. Equals `entropy_floor` for the same data set."""
  context, full, _, _ = window_keys(boards, num_boards, outcome)

  def entropy(keys):
    _, counts = np.unique(keys, return_counts=True)
    p = counts / counts.sum()
    return -float(np.sum(p * np.log(p)))

  return (entropy(full) - entropy(context)) / ttt.BLOCK


def window_keys(boards: np.ndarray, num_boards: np.ndarray, outcome: np.ndarray):
  """Integer keys of every (game, board k) training window of a data set in
  `tictactoe_retrain.Games` layout: (context int64 [P], window int64 [P], game [P], k [P]),
  one entry per window (P = Σ num_boards). Equal keys, equal token sequences: `context` codes
  what the last block is predicted from (-1 for k = 0, where only BOS is seen), `window` the
  whole window."""
  boards = np.asarray(boards, np.int64)
  num_boards, outcome = np.asarray(num_boards), np.asarray(outcome, np.int64)
  code = boards @ (3 ** np.arange(9))                            # [G, 10] board -> base-3 code
  padded = np.concatenate([np.full((len(code), 2), 3 ** 9), code], 1)  # BOS blocks before k = 0
  g_idx, k_idx = np.nonzero(np.arange(ttt.MAX_BOARDS)[None] < num_boards[:, None])
  base = 3 ** 9 + 1
  context = (outcome[g_idx] * base + padded[g_idx, k_idx]) * base + padded[g_idx, k_idx + 1]
  # The outcome token of the last block is also predicted: before k = 0 it is not in the
  # context (BOS only), afterwards it repeats the one in the context.
  context = np.where(k_idx == 0, -1, context)
  full = (context * 3 + outcome[g_idx] % 3) * base + code[g_idx, k_idx]
  return context, full, g_idx, k_idx


def cross_entropy(model: dict, start: Board, first: int) -> float:
  """Nats per token of `model`'s window predictions on every (game, board k) window of the data
  set {all games from `start` with first mover `first`}: block 0 scores P(g), block k ≥ 1
  scores P(board_k | board_{k-1}, g) (one first mover, so block 1 needs no mixture over first
  movers). A game's windows add up to -log P(game); enumerates the games one by one, so it is
  for small reduced games (tests)."""
  W = outcome_probs(model)
  cond = {g: conditional(model, g, W) for g in range(3)}
  positions, loss = 0, 0.0

  def walk(s, g, nll, k):
    nonlocal positions, loss
    if is_over(s[0]):
      if outcome_index(s[0]) == g:
        positions += k + 1
        loss += nll
      return
    for c, t in successors(s):
      if cond[g][s][c] > 0:
        walk(t, g, nll - math.log(cond[g][s][c]), k + 1)

  s0 = (start, first)
  for g in range(3):
    if W[s0][g] > 0:
      walk(s0, g, -math.log(W[s0][g]), 0)
  return loss / (ttt.BLOCK * positions)


# ------------------------------------------------------------------------------------------------
# Play against the uniformly random opponent, exactly.

def play_stats(policy: dict, pi_cond: dict, pi: dict, first: int,
               start: Board = EMPTY_BOARD) -> dict:
  """x plays `policy`, o uniformly at random, from (start, first). Exact expectations:
  score, win/draw/loss probabilities, decisions (x's moves per game), kl_game (Σ over x's
  decisions of KL(π_cond ‖ π) per game), kl (kl_game / decisions: the runner's per-decision
  average over the states this player visits)."""
  memo = {}

  def go(s):
    """[outcome probs (3), expected KL sum, expected decisions]."""
    if s in memo:
      return memo[s]
    board = s[0]
    if is_over(board):
      out = np.concatenate([np.eye(3)[outcome_index(board)], [0.0, 0.0]])
    else:
      moves = successors(s)
      if to_move(*s) == 1:
        p = policy[s]
        extra = np.array([0, 0, 0, kl(pi_cond[s], pi[s]), 1.0])
      else:
        p = legal(board) / len(moves)
        extra = np.zeros(5)
      out = extra + sum(p[c] * go(t) for c, t in moves if p[c] > 0)
    memo[s] = out
    return out

  r = go((start, first))
  return dict(score=float(SCORE @ r[:3]), win=float(r[X_WINS]), draw=float(r[DRAW]),
              loss=float(r[O_WINS]), decisions=float(r[4]), kl_game=float(r[3]),
              kl=float(r[3] / r[4]))


def incoherence(pi_cond: dict, pi: dict, first: int) -> float:
  """[D] Def 3.5: κ = Σ_s KL(π_cond(·|s) ‖ π(·|s)) over every state where x moves, for games
  with first mover `first` (states where x cannot win add 0: there π_cond = π)."""
  return float(sum(kl(pi_cond[s], pi[s]) for s in pi if s[1] == first))


# ------------------------------------------------------------------------------------------------
# [D]'s self-retraining protocol on the perfect model.

def finetune(model: dict, policy: dict, first: int = 1, start: Board = EMPTY_BOARD) -> dict:
  """The perfect model after fine-tuning on the games of x playing `policy` against the random
  opponent from (start, first), relabelled with their outcomes, with infinitely many games.
  Its process is those games' own: x moves by `policy`, o uniformly, on every state those games
  reach; the fine-tuning data say nothing about the other states, which keep `model`'s process
  (the network keeps what it knew there). Returns a new {state: [9]}."""
  new = dict(model)
  frontier, seen = [(start, first)], set()
  while frontier:
    s = frontier.pop()
    if s in seen or is_over(s[0]):
      continue
    seen.add(s)
    p = policy[s] if to_move(*s) == 1 else legal(s[0]) / np.sum(legal(s[0]))
    new[s] = p
    frontier += [t for c, t in successors(s) if p[c] > 0]
  return new


def protocol(rounds: int = 2, both_sides: bool = True, games_of: str = "conditioned") -> list:
  """[D] §4.2.2 on the perfect model: pretrain (the data model), then `rounds` times fine-tune
  to perfection on the games of the `games_of` ('conditioned' or 'unconditioned') player as
  first mover. [D] fine-tunes on the victory-conditioned player's games only; causal_meta's
  runner fine-tunes a separate copy on the unconditioned player's games for its unconditioned
  rows. Each round's model is scored with both players. Returns one dict per (round, player):
  round, conditioned, p1_/p2_ score, win, draw, loss, kl (per decision), kl_game, decisions,
  and kappa_p1 / kappa_p2 ([D] Def 3.5 sums; the same for both players of a round)."""
  if games_of not in ("conditioned", "unconditioned"):
    raise ValueError(f"games_of must be 'conditioned' or 'unconditioned', got {games_of!r}")
  firsts = (1, 2) if both_sides else (1,)
  model = data_model(EMPTY_BOARD, firsts)
  rows = []
  for r in range(rounds + 1):
    pi, pi_cond = policies(model)
    kappa = {f"kappa_p{f}": incoherence(pi_cond, pi, f) for f in firsts}
    for conditioned in (True, False):
      row = dict(round=r, conditioned=conditioned, **kappa)
      for f in firsts:
        stats = play_stats(pi_cond if conditioned else pi, pi_cond, pi, f)
        row.update({f"p{f}_{k}": v for k, v in stats.items()})
      rows.append(row)
    if r < rounds:
      model = finetune(model, pi_cond if games_of == "conditioned" else pi)
  return rows
