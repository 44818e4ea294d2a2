"""A task and an agent of one's own: registered names train from a config, unknown names are
one-line errors, objects can be passed to train_and_evaluate, and load_run reads a run back."""

import dataclasses
import json
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_meta import agents, checkpoints, evaluate, rollout, tasks, train
from causal_meta import config as config_lib
from causal_meta.agents import tokens
from causal_meta.runs import load_run
from causal_meta.tasks import base

TASK, KIND = "registry_test_door", "registry_test_window"


@dataclasses.dataclass(frozen=True)
class Door(base.Task):
  """Two doors, the prize behind door θ; opening it finds the prize w.p. `find_prob`, which
  ends the episode. The expert opens door θ w.p. 0.8."""
  horizon: int = 3
  find_prob: float = 0.5
  name: str = dataclasses.field(default=TASK, init=False)
  num_actions = property(lambda self: 2)
  num_observations = property(lambda self: 2)
  num_latents = property(lambda self: 2)

  def log_prior(self):
    return jnp.log(jnp.full((2,), 0.5))

  def initial_state(self):
    return jnp.zeros((1,), jnp.int32)

  def expert_logits(self, theta, state):
    return jnp.log(jnp.where(jnp.arange(2) == theta, 0.8, 0.2))

  def observation_logits(self, theta, state, action):
    p = jnp.where(action == theta, self.find_prob, 0.0)
    return jnp.log(jnp.stack([1 - p, p]))

  def next_state(self, state, action, observation):
    return jnp.maximum(state, observation).astype(jnp.int32)

  def done(self, state):
    return state[0] == 1


class Window(nn.Module):
  """An MLP over the last `window` tokens (agents.SequenceModel)."""
  vocab_size: int
  num_actions: int
  num_observations: int
  window: int = 3
  learns_in_rollout: ClassVar[bool] = False
  packs_episodes: ClassVar[bool] = False

  def setup(self):
    A, O = self.num_actions, self.num_observations
    self.embed = nn.Embed(self.vocab_size + 1, 8)  # + padding
    self.head = nn.Dense(A + 2 * A * O)

  def _head(self, window):
    return self.head(self.embed(window).reshape(*window.shape[:-1], -1))

  def initial_carry(self):
    return jnp.full((self.window,), self.vocab_size, jnp.int32)

  def step(self, carry, token):
    carry = jnp.concatenate([carry[1:], jnp.asarray(token, jnp.int32)[None]])
    return carry, self._head(carry)

  def __call__(self, toks):
    padded = jnp.concatenate([jnp.full((self.window - 1,), self.vocab_size, jnp.int32), toks])
    return self._head(padded[jnp.arange(toks.shape[0])[:, None] + jnp.arange(self.window)])


def build_window(task, window=3, author_tokens=True, **_):
  module = Window(tokens.vocab_size(task.num_actions, task.num_observations),
                  task.num_actions, task.num_observations, window)
  return agents.Agent(module, task.num_actions, task.num_observations, task.horizon,
                      author_tokens)


@pytest.fixture(scope="module")
def registered():
  tasks.register(TASK, lambda horizon=3, find_prob=0.5: Door(horizon, find_prob))
  agents.register(KIND, build_window)
  yield
  tasks.unregister(TASK)
  agents.unregister(KIND)


def small_config(task=TASK, kind=KIND):
  c = config_lib.default()
  c.task.name, c.agent.kind = task, kind
  if kind == KIND:
    c.agent.window = 3  # a field only this agent reads (the built-in kinds reject it)
  c.batch_size, c.num_updates, c.updates_per_call, c.log_every = 16, 4, 2, 2
  c.eval_episodes = 32
  c.tensorboard = False
  return c


@pytest.fixture(scope="module")
def run_dir(registered, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("registered")
  c = small_config()
  c.task[TASK] = dict(find_prob=0.25)  # the constructor's parameter, from the config
  summary = train.train_and_evaluate(c, str(workdir), verbose=False)
  return workdir, summary


def test_registered_names_train_from_a_config(run_dir):
  workdir, summary = run_dir
  assert summary["task"] == TASK and summary["updates"] == 4
  assert set(summary["params"]) == {"embed", "head"}  # the registered agent's module
  assert summary["params"]["head"]["kernel"].shape == (3 * 8, 2 + 2 * 2 * 2)
  assert [r["step"] for r in summary["history"]] == [2, 4]
  assert np.isfinite(summary["kl_action_interventional"])
  run = load_run(workdir)
  assert run.task == Door(3, 0.25)  # config.task.<name> reached the constructor


def test_user_module_acts_as_it_learns(registered):
  """The protocol's contract on the test's own model: the logits produced while acting equal
  the teacher-forced pass's (as tests/test_agents.py checks for the built-in ones)."""
  task = tasks.make(TASK)
  agent = agents.make(KIND, task)
  params = agent.init(jax.random.PRNGKey(0))
  @jax.jit
  def both(params, key):
    traj, acting = rollout.braid(task, agent.policy(params), key, 8, expert_prob=0.5,
                                 with_logits=True)
    return traj, acting, agent.teacher_force(params, traj)

  traj, (act_a, act_o), (tf_a, tf_o) = both(params, jax.random.PRNGKey(1))
  mask = np.asarray(traj.mask)
  np.testing.assert_allclose(np.asarray(act_a)[mask], np.asarray(tf_a)[mask], atol=1e-5)
  np.testing.assert_allclose(np.asarray(act_o)[mask], np.asarray(tf_o)[mask], atol=1e-5)


def test_unknown_names_list_what_is_registered(registered):
  with pytest.raises(ValueError) as e:
    config_lib.validate(small_config(task="nope"), 1)
  assert str(e.value) == ("config.task.name: unknown value 'nope'; allowed: "
                          f"{', '.join(n for n in tasks.names() if n != 'tabular')}")
  assert TASK in str(e.value) and "\n" not in str(e.value)
  with pytest.raises(ValueError, match=rf"^config.agent.kind: unknown value 'rnn'; allowed: "
                                       rf"lstm, gru, transformer, {KIND}$"):
    config_lib.validate(small_config(kind="rnn"), 1)


def test_a_name_registered_after_import_validates():
  """FIELDS reads the registries when it checks, not when config.py was imported."""
  with pytest.raises(ValueError, match="config.task.name: unknown value 'late_door'"):
    config_lib.validate(small_config(task="late_door", kind="lstm"), 1)
  tasks.register("late_door", Door)
  try:
    task, agent = config_lib.validate(small_config(task="late_door", kind="lstm"), 1)
    assert isinstance(task, Door) and agent.num_actions == 2
  finally:
    tasks.unregister("late_door")
  with pytest.raises(ValueError, match="unknown value 'late_door'"):
    config_lib.validate(small_config(task="late_door", kind="lstm"), 1)


def test_registering_twice(registered):
  with pytest.raises(ValueError, match=f"task '{TASK}' is registered already; pass "
                                       "replace=True"):
    tasks.register(TASK, Door)
  with pytest.raises(ValueError, match=f"agent kind '{KIND}' is registered already"):
    agents.register(KIND, build_window)
  with pytest.raises(ValueError, match="'bandit' is registered already"):
    tasks.register("bandit", Door)
  before = tasks.REGISTRY[TASK]
  tasks.register(TASK, Door, replace=True)
  try:
    assert tasks.make(TASK, horizon=2) == Door(horizon=2)
  finally:
    tasks.register(TASK, before, replace=True)
  for bad in ("name", "two words", ""):
    with pytest.raises(ValueError, match="name must be an identifier"):
      tasks.register(bad, Door)


def test_bad_builders_and_constructors(registered):
  tasks.register("not_a_task", lambda: 3)
  try:
    with pytest.raises(ValueError, match="constructor returned int, not a causal_meta"):
      tasks.make("not_a_task")
  finally:
    tasks.unregister("not_a_task")
  agents.register("wrong_horizon", lambda task, **_: build_window(dataclasses.replace(
      task, horizon=task.horizon + 1)))
  try:
    with pytest.raises(ValueError, match="built for 2 actions, 2 observations and horizon 4; "
                                         f"task '{TASK}' has 2, 2 and 3"):
      agents.make("wrong_horizon", tasks.make(TASK))
  finally:
    agents.unregister("wrong_horizon")
  with pytest.raises(ValueError, match="module Dense lacks learns_in_rollout, packs_episodes, "
                                       "initial_carry, step"):
    agents.Agent(nn.Dense(3), 2, 2, 3)


def test_load_run_round_trip(run_dir):
  workdir, summary = run_dir
  run = load_run(workdir)
  assert run.config.task.name == TASK and run.config.agent.window == 3
  assert run.config.to_dict() == json.loads((workdir / "config.json").read_text())
  assert run.step == 4 and run.agent == agents.make(KIND, run.task, window=3)
  state, _ = checkpoints.load_state_dict(str(workdir))
  jax.tree.map(np.testing.assert_array_equal, run.params, state["params"])
  jax.tree.map(np.testing.assert_array_equal, run.params, summary["params"])
  assert run.summary == json.loads((workdir / "summary.json").read_text())
  assert run.summary["kl_action_interventional"] == summary["kl_action_interventional"]
  assert [r["step"] for r in run.history] == [2, 4]
  # The parameters give the summary's numbers again (the run's evaluation episodes).
  again = jax.jit(evaluate.agent_metrics, static_argnums=(0, 1, 4))(
      run.task, run.agent, run.params, train.evaluation_key(run.config.seed),
      run.config.eval_episodes)
  np.testing.assert_allclose(float(again["kl_action_interventional"]),
                             summary["kl_action_interventional"], rtol=1e-5)


def test_load_run_errors(run_dir, tmp_path):
  workdir, _ = run_dir
  other = build_window(Door(3, 0.25), window=2)
  with pytest.raises(ValueError, match=r"holds a different model: parameter 'head/kernel' has "
                                       r"shape \(24, 10\) there, \(16, 10\) in the agent"):
    load_run(workdir, agent=other)
  with pytest.raises(FileNotFoundError, match="no config.json"):
    load_run(tmp_path)
  config = json.loads((workdir / "config.json").read_text())
  config["task"]["name"] = "unregistered_door"
  (tmp_path / "config.json").write_text(json.dumps(config))
  with pytest.raises(ValueError, match="config.task.name: unknown value 'unregistered_door'.*"
                                       r"load_run\(workdir, task=..., agent=...\)"):
    load_run(tmp_path)


def test_objects_instead_of_names(tmp_path):
  """An unregistered Task and Agent passed to train_and_evaluate: trained, recorded with the
  config as it is, and loaded back with the same objects."""
  task = Door(horizon=3, find_prob=0.75)
  agent = build_window(task, window=2)
  c = small_config(task="bandit", kind="lstm")  # named, not used
  summary = train.train_and_evaluate(c, str(tmp_path / "run"), verbose=False, task=task,
                                     agent=agent)
  assert summary["task"] == TASK and set(summary["params"]) == {"embed", "head"}
  assert json.loads((tmp_path / "run" / "config.json").read_text())["task"]["name"] == "bandit"
  run = load_run(tmp_path / "run", task=task, agent=agent)
  jax.tree.map(np.testing.assert_array_equal, run.params, summary["params"])
  with pytest.raises(ValueError, match="holds a different model"):
    load_run(tmp_path / "run")  # the config's bandit LSTM is not this run's model
  # An agent for another task: one line, before anything is written.
  with pytest.raises(ValueError, match="^agent: built for 2 actions.*task 'bandit' has 5"):
    train.train_and_evaluate(c, str(tmp_path / "bad"), verbose=False, agent=agent)
  with pytest.raises(ValueError, match="^task: must be a causal_meta.tasks.Task, got str"):
    train.train_and_evaluate(c, str(tmp_path / "bad"), verbose=False, task="bandit")
  assert not (tmp_path / "bad").exists()
