"""Data parallelism on 8 simulated CPU devices (a subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=8): the batch is really split, the gradient
is all-reduced once per update, training and the gradient (LSTM, transformer, microbatches)
match the single-device run, and a batch the devices can't split is a config error."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = r"""
import json, re
import chex
import jax
import numpy as np
from causal_meta import config as config_lib, parallel, train

assert jax.device_count() == 8, jax.devices()
c = config_lib.default()
c.task.name = "bandit"
c.agent.hidden = 32
c.batch_size = c.eval_episodes = 64
c.num_updates, c.updates_per_call, c.log_every = 20, 10, 10
c.optim.learning_rate = 1e-2
c.tensorboard = False
task, agent = config_lib.validate(c)
mesh8, mesh1 = parallel.data_mesh(), parallel.data_mesh(jax.devices()[:1])
out = {}

# (a) The rollout the update trains on is split over 'data', 8 episodes per device, and the
# compiled chunk works on per-device shapes: no [64, 32] (batch x LSTM hidden) array anywhere.
optimizer = train.make_optimizer(c)
state = train.init_state(agent, optimizer, 0, mesh8)
traj = jax.jit(train.make_act(task, agent, c, mesh8))(state.params, jax.random.PRNGKey(1))
out["spec"] = sorted({tuple(x.sharding.spec) for x in jax.tree.leaves(traj)})
out["shard_shapes"] = sorted({tuple(s.data.shape) for s in traj.actions.addressable_shards})
out["num_shards"] = len(traj.actions.addressable_shards)
# The state stays replicated, so feeding a chunk its own output never retraces.
update = chex.assert_max_traces(train.make_update(task, agent, optimizer, c, mesh8), n=1)
chunk = train.make_train_chunk(update, 2)
new_state, _ = chunk(chunk(state)[0])
out["steps"] = int(new_state.step)
out["state_replicated"] = all(x.sharding.is_fully_replicated for x in jax.tree.leaves(new_state))
hlo = chunk.lower(new_state).compile().as_text()
out["global_shapes"] = len(re.findall(r"\[64,32\]", hlo))
out["local_shapes"] = len(re.findall(r"\[8,32\]", hlo))
# Each all-reduce sits in the body of the chunk's loop over its 2 updates, none in a loop over
# time steps: the gradient is reduced once per update.
trips = {m[0]: int(m[1]) for m in
         re.findall(r'body=%([^,\s]+).*?known_trip_count":\{"n":"(\d+)"', hlo)}
computation, reduced_in = None, []
for line in hlo.splitlines():
  if line and not line[0].isspace() and line.rstrip().endswith("{"):
    computation = line.split()[1 if line.startswith("ENTRY") else 0].lstrip("%")
  elif " all-reduce(" in line:
    reduced_in.append(trips.get(computation))
out["all_reduce_loop_trips"] = reduced_in

# The gradient on 8 devices is the gradient on one, for the transformer and for microbatches.
for name, field, value in (("transformer", "agent.kind", "transformer"),
                           ("microbatches", "microbatches", 2)):
  g = config_lib.default()
  g.batch_size = g.eval_episodes = 64
  g.agent.hidden = g.agent.width = 32
  g.agent.num_layers = 1
  section, _, leaf = field.rpartition(".")
  (g[section] if section else g)[leaf] = value
  g_task, g_agent = config_lib.validate(g)
  params = g_agent.init(jax.random.PRNGKey(3))
  grads = [jax.jit(train.make_value_and_grad(g_task, g_agent, g, m))(params,
                                                                     jax.random.PRNGKey(4))
           for m in (mesh8, mesh1)]
  out[name] = [[float(np.max(np.abs(np.asarray(a) - np.asarray(b)))), float(np.max(np.abs(b)))]
               for a, b in zip(jax.tree.leaves(grads[0][:2]), jax.tree.leaves(grads[1][:2]))]

# (b) The same run on 8 devices and on a mesh of one.
runs = {n: train.train_and_evaluate(c, verbose=False, mesh=m)
        for n, m in (("8", mesh8), ("1", mesh1))}
keys = ("loss", "counterfactual_loss", "factual_loss", "grad_norm", "kl_action_interventional",
        "kl_action_conditional", "kl_observation_interventional")
out["history"] = {n: [[r[k] for k in keys] for r in run["history"]] for n, run in runs.items()}
out["mesh_size"] = {n: run["mesh_size"] for n, run in runs.items()}
oracle_keys = ("oracle_interventional_reward", "oracle_conditional_reward",
               "oracle_interventional_best_action_rate", "oracle_conditional_success_rate")
out["oracles"] = {n: [run[k] for k in oracle_keys] for n, run in runs.items()}
# The oracles' deployment episodes are split too: the compiled evaluation holds their
# posteriors over the 5 arms' codes as [8, 5] per device, never [64, 5].
from causal_meta import evaluate
oracle_hlo = jax.jit(lambda k: evaluate.oracle_metrics(task, k, 64, mesh=mesh8)).lower(
    jax.random.PRNGKey(0)).compile().as_text()
out["oracle_global_shapes"] = len(re.findall(r"\[64,5\]", oracle_hlo))
out["oracle_local_shapes"] = len(re.findall(r"\[8,5\]", oracle_hlo))
out["default_mesh"] = train.train_and_evaluate(c, verbose=False)["mesh_size"]

# (c) Batches the 8 devices can't split.
errors = []
for field, value in (("batch_size", 100), ("eval_episodes", 4), ("microbatches", 16)):
  bad = config_lib.default()
  bad.batch_size = bad.eval_episodes = 64
  bad[field] = value
  try:
    config_lib.validate(bad)
  except ValueError as e:
    errors.append(str(e))
out["errors"] = errors
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def result():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
  return json.loads(line[len("RESULT "):])


def test_the_batch_is_split_over_the_devices(result):
  assert result["spec"] == [["data"]]
  assert result["num_shards"] == 8
  assert result["shard_shapes"] == [[8, 20]]          # B/8 episodes x T steps per device
  assert result["global_shapes"] == 0 and result["local_shapes"] > 0
  assert result["state_replicated"] and result["steps"] == 4


def test_the_gradient_is_all_reduced_once_per_update(result):
  assert result["all_reduce_loop_trips"] and set(result["all_reduce_loop_trips"]) == {2}


@pytest.mark.parametrize("case", ["transformer", "microbatches"])
def test_eight_devices_compute_the_gradient_of_one(result, case):
  # Leaves of (loss, parts) and of the gradient: [max |8 devices - 1 device|, max |1 device|].
  for diff, scale in result[case]:
    assert diff <= 1e-6 + 1e-4 * scale, result[case]


def test_eight_devices_train_like_one(result):
  h8, h1 = result["history"]["8"], result["history"]["1"]
  assert len(h8) == len(h1) == 2
  assert result["mesh_size"] == {"8": 8, "1": 1} and result["default_mesh"] == 8
  np.testing.assert_allclose(np.array(h8), np.array(h1), rtol=1e-4, atol=1e-6)


def test_the_oracles_deploy_on_the_split_batch_too(result):
  np.testing.assert_allclose(result["oracles"]["8"], result["oracles"]["1"], rtol=1e-5)
  assert result["oracle_global_shapes"] == 0 and result["oracle_local_shapes"] > 0


def test_a_batch_the_devices_cannot_split_is_a_one_line_error(result):
  batch, evals, microbatches = result["errors"]
  assert "\n" not in batch + evals + microbatches
  assert re.search(r"config\.batch_size \(100\) must be a multiple of the device count \(8\)"
                   r".*multiples of 8, e\.g\. 96 or 104", batch)
  assert re.search(r"config\.eval_episodes \(4\) .*device count \(8\).*e\.g\. 8 or 16", evals)
  assert re.search(r"config\.microbatches: must divide each device's share of the batch "
                   r"\(batch_size 64 / 8 devices = 8\), got 16", microbatches)
