"""Temporary memory XLA's buffer assignment plans for the transformer's rollout and learning
pass (the gradient of the teaching loss on one batch), from the compiled program's memory
analysis.
Compiled for this machine's backend; nothing is run. Usage (printed: learning_pass_memory.txt):

  python docs/results/cpu_options/learning_pass_memory.py B T [--attention_chunk=N]
      [--microbatches=K]
"""

import sys

import jax

from causal_meta import config as config_lib
from causal_meta import train


def main(batch_size: int, horizon: int, chunk: int, microbatches: int) -> None:
  config = config_lib.default()
  config.agent.kind = "transformer"
  config.agent.attention_chunk = chunk
  config.batch_size, config.microbatches = batch_size, microbatches
  config.task.bandit.horizon = horizon
  task, agent = config_lib.validate(config)
  params = agent.init(jax.random.PRNGKey(0))
  grad = jax.jit(lambda p, k: train.make_value_and_grad(task, agent, config)(p, k)[1])
  memory = grad.lower(params, jax.random.PRNGKey(1)).compile().memory_analysis()
  print(f"transformer 2x64 B={batch_size} T={horizon} attention_chunk={chunk} "
        f"microbatches={microbatches}: temp "
        f"{memory.temp_size_in_bytes / 2**30:.2f} GiB, arguments "
        f"{memory.argument_size_in_bytes / 2**30:.3f} GiB")


if __name__ == "__main__":
  option = lambda name: ([int(a.split("=", 1)[1]) for a in sys.argv[3:]
                          if a.startswith(f"--{name}=")] or [None])[-1]
  main(int(sys.argv[1]), int(sys.argv[2]), option("attention_chunk") or 0,
       option("microbatches") or 1)
