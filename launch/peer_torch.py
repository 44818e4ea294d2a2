"""The peer that causal_meta's speed is compared with: the braided counterfactual-teaching
update for the paper bandit ([O] Remark 11: 5 arms, T = 20) written the way a researcher would
write it in PyTorch eager. An LSTM (hidden 64) reads (previous action with its author, previous
observation) once per env step; an action head gives P_A; an observation head reads the state
and the taken action and gives P_O. The agent samples its action (no gradient), the expert
(who sees θ) samples the counterfactual target, the bandit answers the taken action; loss =
counterfactual cross-entropy + factual cross-entropy; Adam. Batched over B episodes, a Python
loop over T, backpropagation through the loop.

  python launch/peer_torch.py 256 1024             # env-steps/s per batch size
  python launch/peer_torch.py --horizon=100 256    # another horizon

Needs only torch and numpy (not a dependency of causal_meta: `pip install torch`). `python -m
launch.benchmark --peer` runs it beside each of its own settings, alternating, so the ratio is
measured in one run (BENCHMARKS.md).
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

K = 5
dev = "cuda" if torch.cuda.is_available() else "cpu"
P_EXPERT = torch.full((K, K), 0.1, device=dev).fill_diagonal_(0.6)   # [θ, a]
P_REWARD = torch.full((K, K), 0.25, device=dev).fill_diagonal_(0.75)  # [θ, a] P(o = 1)


class Agent(nn.Module):
  def __init__(self, H):
    super().__init__()
    self.cell = nn.LSTMCell(2 * K + 1 + 3, H)   # do(a) / a / start, and o / start
    self.act_head = nn.Linear(H, K)
    self.obs_head = nn.Linear(H + 2 * K, 2)


def update(agent, opt, B, T, H):
  theta = torch.randint(0, K, (B,), device=dev)
  h = torch.zeros(B, H, device=dev)
  c = torch.zeros(B, H, device=dev)
  a_tok = torch.full((B,), 2 * K, device=dev)   # start token
  o_tok = torch.full((B,), 2, device=dev)
  loss = 0.0
  for _ in range(T):
    x = torch.cat([F.one_hot(a_tok, 2 * K + 1), F.one_hot(o_tok, 3)], -1).float()
    h, c = agent.cell(x, (h, c))
    logits = agent.act_head(h)
    a = torch.distributions.Categorical(logits=logits.detach()).sample()   # the agent acts
    a_exp = torch.multinomial(P_EXPERT[theta], 1).squeeze(1)              # what the expert would do
    o = (torch.rand(B, device=dev) < P_REWARD[theta, a]).long()          # the bandit answers
    obs_logits = agent.obs_head(torch.cat([h, F.one_hot(a, 2 * K).float()], -1))  # a as do(a)
    loss = loss + F.cross_entropy(logits, a_exp) + F.cross_entropy(obs_logits, o)
    a_tok, o_tok = a, o                                                   # do(a) tokens: 0..K-1
  opt.zero_grad()
  (loss / T).backward()
  opt.step()
  return loss


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("batch_sizes", type=int, nargs="+")
  parser.add_argument("--horizon", type=int, default=20)
  parser.add_argument("--hidden", type=int, default=64)
  parser.add_argument("--updates", type=int, default=50, help="timed updates per batch size")
  args = parser.parse_args()
  torch.manual_seed(0)
  print(f"torch {torch.__version__} on {dev}")
  T, H = args.horizon, args.hidden
  for B in args.batch_sizes:
    agent = Agent(H).to(dev)
    opt = torch.optim.Adam(agent.parameters(), 3e-3)
    for _ in range(5):
      update(agent, opt, B, T, H)
    if dev == "cuda":
      torch.cuda.synchronize()
    n = args.updates
    t0 = time.time()
    for _ in range(n):
      last = update(agent, opt, B, T, H)
    last.item()
    dt = time.time() - t0
    print(f"torch B={B} T={T}: {dt / n * 1e3:.2f} ms/update; {n * B * T / dt:.3g} env-steps/s")
