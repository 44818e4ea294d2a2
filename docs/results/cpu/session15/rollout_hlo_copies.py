"""Where the CPU's compiled transformer rollout copies cache-sized arrays: per S
(`cache_segments`), the copy ops whose shape is one cache block's, [B, H, S_j, D], counted in
the entry computation (between the segments' loops) and in every other computation (loop
bodies and fusions), and the `wrapped_slice` fusions (slices copied out; the first,
sliced-cache version of session 15 had one per layer per step).

  python docs/results/cpu/session15/rollout_hlo_copies.py
"""

import re

import jax

from causal_meta import agents, rollout, tasks

B, T = 64, 8


def main():
  task = tasks.make("bandit", horizon=T)
  for S in (1, 4):
    agent = agents.make("transformer", task, cache_segments=S)
    params = agent.init(jax.random.PRNGKey(0))
    f = jax.jit(lambda p, k: rollout.braid(task, agent.policy(p), k, B))
    hlo = f.lower(params, jax.random.PRNGKey(1)).compile().as_text()
    head = agent.module.width // agent.module.num_heads
    ends = agent.module.cache_ends or (agent.module.max_len,)
    sizes = {end - start for start, end in zip((0,) + ends[:-1], ends)}
    shapes = {f"f32[{B},{agent.module.num_heads},{n},{head}]" for n in sizes}
    counts, computation = {"entry": 0, "elsewhere": 0}, None
    for line in hlo.splitlines():
      if line and not line.startswith(" "):
        computation = "entry" if line.startswith("ENTRY") else "elsewhere"
      m = re.search(r"= (f32\[[0-9,]+\])\{[0-9,]+\} copy\(", line)
      if m and m.group(1) in shapes:
        counts[computation] += 1
    slices = len(re.findall(r"%wrapped_slice[.0-9]* = f32", hlo))
    print(f"S = {S}: cache blocks of {sorted(sizes)} slots; block-sized copies: "
          f"{counts['entry']} between loops, {counts['elsewhere']} inside them; "
          f"float wrapped_slice fusions: {slices}")


if __name__ == "__main__":
  main()
