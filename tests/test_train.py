"""Training end to end, in small fast versions of the README's targets."""

import io
import json
import os
import shutil
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from causal_meta import config as config_lib
from causal_meta import metrics, progress, reproduce, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SUMMARY_KEYS = (
    "task", "agent", "teaching", "kl_action_interventional", "kl_action_conditional",
    "kl_observation_interventional", "kl_observation_conditional", "mean_reward",
    "best_action_rate", "oracle_interventional_reward", "oracle_conditional_reward",
    "oracle_interventional_best_action_rate", "oracle_conditional_best_action_rate", "updates",
    "env_steps", "wall_seconds", "env_steps_per_second")


def small_config(task="prize_or_frog", teaching="counterfactual", kind="lstm", updates=150,
                 **task_params):
  c = config_lib.default()
  c.task.name = task
  c.task[task].update(task_params)
  c.teaching = teaching
  c.agent.kind = kind
  c.agent.hidden = c.agent.width = 32
  c.batch_size = 128
  c.num_updates = updates
  c.updates_per_call = c.log_every = 50
  c.eval_episodes = 1024
  c.optim.learning_rate = 1e-2
  return c


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_prize_or_frog_counterfactual_vs_demonstration(kind, tmp_path):
  """[O] §2 learned: counterfactual teaching predicts P(prize | do(a)) = 1/2; demonstrations
  predict P(prize | a) = 1. KL(cond ‖ cf agent) and KL(int ‖ demo agent) are then log 2-ish."""
  received = []  # a `writers` hook: what a W&B or MLflow logger would get
  cf = train.train_and_evaluate(small_config(kind=kind), str(tmp_path / "cf"), verbose=False,
                                writers=[received.append])
  demo = train.train_and_evaluate(small_config(kind=kind, teaching="demonstration"),
                                  str(tmp_path / "demo"), verbose=False)
  assert cf["kl_observation_interventional"] < 0.02
  assert cf["kl_observation_conditional"] > 0.3
  assert demo["kl_observation_conditional"] < 0.05
  assert demo["kl_observation_interventional"] > 0.3
  # Both predict the first action (a prior predictive: uniform) the same way.
  assert cf["kl_action_interventional"] < 0.01 and demo["kl_action_conditional"] < 0.01
  # The summary on disk has every documented key.
  summary = json.load(open(tmp_path / "cf" / "summary.json"))
  assert set(SUMMARY_KEYS) <= set(summary)
  assert summary["env_steps"] == 150 * 128 * 1
  assert os.path.exists(tmp_path / "cf" / "metrics.jsonl")
  for fig in ("kl.png", "losses.png", "p_best_action.png", "actions.png"):
    assert os.path.exists(tmp_path / "cf" / "figures" / fig)
  assert json.load(open(tmp_path / "cf" / "config.json"))["agent"]["kind"] == kind
  assert summary["num_devices"] >= 1 and summary["packages"]["jax"] == jax.__version__
  assert summary["hardware"]["cpu_count"] >= 1
  # metrics.jsonl and the TensorBoard events hold the same numbers.
  rows = metrics.read_jsonl(str(tmp_path / "cf" / "metrics.jsonl"))
  assert [r["step"] for r in rows] == [50, 100, 150]
  assert {"loss", "kl_action_interventional", "kl_action_conditional", "mean_reward",
          "env_steps", "env_steps_per_second"} <= set(rows[0])
  assert received == rows
  events = tensorboard_events(tmp_path / "cf" / "tensorboard")
  assert events.Tags()["scalars"] and set(events.Tags()["scalars"]) == set(rows[0]) - {"step"}
  for tag in events.Tags()["scalars"]:
    assert [(e.step, e.value) for e in events.Scalars(tag)] == [
        (r["step"], pytest.approx(r[tag], rel=1e-6)) for r in rows]
  assert set(events.Tags()["images"]) == {"figures/kl", "figures/losses",
                                          "figures/p_best_action", "figures/actions"}
  hparams = tensorboard_events(tmp_path / "cf" / "tensorboard" / "hparams")
  assert "_hparams_/session_start_info" in hparams.PluginTagToContent("hparams")
  (final,) = hparams.Scalars("final/kl_action_interventional")
  assert final.value == pytest.approx(summary["kl_action_interventional"], rel=1e-6)
  # Provenance: this process's command line (pytest's) and the code's commit, if a checkout.
  assert summary["command"] == metrics.command()
  assert summary["git_commit"] == metrics.git_state()["git_commit"] and "git_dirty" in summary


def test_bandit_non_default_parameters():
  """Not just the defaults: a 3-armed bandit with other numbers, short horizon."""
  params = dict(num_arms=3, best_arm_prob=0.7, reward_prob_best=0.9, reward_prob_other=0.3,
                horizon=6)
  cf = train.train_and_evaluate(small_config("bandit", updates=400, **params), verbose=False)
  demo = train.train_and_evaluate(small_config("bandit", "demonstration", updates=400,
                                               **params), verbose=False)
  assert cf["kl_action_interventional"] < 0.02 < cf["kl_action_conditional"]
  assert demo["kl_action_conditional"] < 0.02 < demo["kl_action_interventional"]
  assert cf["kl_action_conditional"] > 2 * cf["kl_action_interventional"]
  assert demo["kl_action_interventional"] > 2 * demo["kl_action_conditional"]
  assert abs(cf["best_action_rate"] - cf["oracle_interventional_best_action_rate"]) < 0.05


def test_the_expert_policy_as_target_teaches_the_same_oracles():
  """`loss.expert_target="policy"` (the expected counterfactual loss over the expert's draw)
  has the same minimiser: each teaching mode still lands on its own oracle."""
  params = dict(num_arms=3, best_arm_prob=0.7, reward_prob_best=0.9, reward_prob_other=0.3,
                horizon=6)
  runs = {}
  for teaching in ("counterfactual", "demonstration"):
    c = small_config("bandit", teaching, updates=400, **params)
    c.loss.expert_target = "policy"
    runs[teaching] = train.train_and_evaluate(c, verbose=False)
  cf, demo = runs["counterfactual"], runs["demonstration"]
  assert cf["kl_action_interventional"] < 0.02 < cf["kl_action_conditional"]
  assert demo["kl_action_conditional"] < 0.02 < demo["kl_action_interventional"]


def test_packing_falls_back_and_changes_no_number():
  """`agent.packing`: the update's loss and gradient are those of the plain pass, whether the
  batch fits its rows (padlock demonstrations, 1.5 or 2 per row) or not (8 per row: too few
  rows). Recurrent agents ignore it."""
  c = small_config("padlock", "demonstration", kind="transformer", epsilon=0.42)
  task, agent = config_lib.validate(c)
  params = agent.init(jax.random.PRNGKey(0))
  key = jax.random.PRNGKey(1)
  (want_loss, parts), want_grad, _ = jax.jit(train.make_value_and_grad(task, agent, c))(
      params, key)
  assert "packed" not in parts
  for per_row, fits in ((1.5, 1.0), (2, 1.0), (8, 0.0)):
    c.agent.packing = per_row
    config_lib.validate(c)
    (loss, parts), grad, _ = jax.jit(train.make_value_and_grad(task, agent, c))(params, key)
    assert float(parts["packed"]) == fits
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                 grad, want_grad)
  # Recurrent agents ignore it, like the transformer's other fields.
  c.agent.kind = "lstm"
  _, lstm = config_lib.validate(c)
  (_, parts), _, _ = jax.jit(train.make_value_and_grad(task, lstm, c))(
      lstm.init(jax.random.PRNGKey(0)), key)
  assert "packed" not in parts


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_microbatches_change_no_number(kind):
  """`microbatches`: the update over 4 slices of the batch gives the whole batch's loss,
  parts, gradient and trajectory, with episodes that end early (padlock: the slices hold
  different numbers of steps)."""
  c = small_config("padlock", "mixed", kind=kind, epsilon=0.3)
  c.batch_size, c.agent.hidden, c.agent.width = 36, 16, 16
  task, agent = config_lib.validate(c)
  params = agent.init(jax.random.PRNGKey(0))
  key = jax.random.PRNGKey(1)
  (want_loss, want_parts), want_grad, want_traj = jax.jit(
      train.make_value_and_grad(task, agent, c))(params, key)
  steps = np.asarray(want_traj.mask).reshape(9, 4, -1).sum((0, 2))  # slice j: episodes j + 4i
  assert len(set(steps.tolist())) > 1
  c.microbatches = 4
  config_lib.validate(c)
  (loss, parts), grad, traj = jax.jit(train.make_value_and_grad(task, agent, c))(params, key)
  jax.tree.map(np.testing.assert_array_equal, traj, want_traj)
  np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
  for name in want_parts:
    np.testing.assert_allclose(parts[name], want_parts[name], rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               grad, want_grad)


def test_training_is_deterministic_given_the_seed(capsys):
  a = train.train_and_evaluate(small_config(updates=50), verbose=False)
  b = train.train_and_evaluate(small_config(updates=50), verbose=False)
  assert capsys.readouterr().out == ""  # verbose=False is quiet
  for x, y in zip(jax.tree.leaves(a["params"]), jax.tree.leaves(b["params"])):
    np.testing.assert_array_equal(x, y)


BAD_CONFIGS = [
    (lambda c: setattr(c.task, "name", "chess"), "config.task.name: unknown value 'chess'"),
    (lambda c: setattr(c.agent, "kind", "rnn"), "config.agent.kind: unknown value 'rnn'"),
    (lambda c: setattr(c, "teaching", "imitation"), "config.teaching"),
    (lambda c: setattr(c, "batch_size", 0), "config.batch_size"),
    (lambda c: setattr(c, "num_updates", 150), "multiple of config.updates_per_call"),
    (lambda c: setattr(c, "mixed_prob", 1.5), "config.mixed_prob"),
    (lambda c: setattr(c.optim, "learning_rate", -1.0), "config.optim.learning_rate"),
    (lambda c: c.task.bandit.update(best_arm_prob=2.0), "best_arm_prob"),
    (lambda c: setattr(c, "checkpoint_every", 150), "config.checkpoint_every"),
    (lambda c: setattr(c, "keep_checkpoints", 0), "config.keep_checkpoints"),
    (lambda c: setattr(c.agent, "hidden", -3), "config.agent.hidden"),
    (lambda c: setattr(c, "tensorboard", None), "config.tensorboard"),
    (lambda c: setattr(c.optim, "schedule", "linear"), "config.optim.schedule: unknown"),
    (lambda c: setattr(c.optim, "weight_decay", -0.1), "config.optim.weight_decay"),
    (lambda c: setattr(c.agent, "position", "alibi"), "config.agent.position: unknown"),
    (lambda c: setattr(c.loss, "expert_target", "soft"), "config.loss.expert_target: unknown"),
    (lambda c: setattr(c.agent, "packing", 0.5), "config.agent.packing"),
    (lambda c: setattr(c.agent, "attention_chunk", -1), "config.agent.attention_chunk: must"),
    (lambda c: setattr(c, "microbatches", 3), "config.microbatches: must divide"),
    (lambda c: setattr(c, "scan_unroll", 0), "config.scan_unroll: must be a positive integer"),
    (lambda c: c.agent.update(kind="transformer", num_heads=3),
     "config.agent: 'width' .64. must be divisible"),
    (lambda c: delattr(c.agent, "packing"), "config.agent.packing: missing"),
    (lambda c: (setattr(c, "microbatches", 2), c.agent.update(kind="transformer", packing=2)),
     "config.microbatches: packing"),
]


def test_cosine_schedule_decays_to_zero_at_num_updates():
  """The learning rate applied: full at the start, half at num_updates / 2, 0 at the end, read
  off the optimizer's own update on a unit gradient (Adam's first step moves a coordinate by
  the learning rate; only the schedule's step count is fast-forwarded)."""
  c = config_lib.default()
  c.num_updates, c.optim.schedule, c.optim.grad_clip = 100, "cosine", 1e9
  optimizer = train.make_optimizer(c)
  params = jnp.zeros(())
  for step, want in ((0, 3e-3), (50, 1.5e-3), (100, 0.0)):
    state = optimizer.init(params)
    is_schedule = lambda s: isinstance(s, optax.ScaleByScheduleState)
    state = jax.tree.map(lambda s: s._replace(count=jnp.full_like(s.count, step))
                         if is_schedule(s) else s, state, is_leaf=is_schedule)
    updates, _ = optimizer.update(jnp.ones(()), state, params)
    np.testing.assert_allclose(-updates, want, rtol=1e-3, atol=1e-9)


def test_weight_decay_shrinks_matrices_not_biases():
  """AdamW's decoupled decay: with a zero gradient Adam moves nothing, so the update is
  -lr · wd · w on matrices (ndim ≥ 2) and 0 on vectors (biases, norms)."""
  c = config_lib.default()
  c.optim.weight_decay, c.optim.grad_clip = 0.1, 1e9
  optimizer = train.make_optimizer(c)
  params = {"kernel": jnp.full((2, 3), 2.0), "bias": jnp.full((3,), 2.0)}
  updates, _ = optimizer.update(jax.tree.map(jnp.zeros_like, params), optimizer.init(params),
                                params)
  np.testing.assert_allclose(updates["kernel"], -3e-3 * 0.1 * 2.0, rtol=1e-5)
  np.testing.assert_array_equal(updates["bias"], 0.0)


@pytest.mark.parametrize("experiment,size", [("bandit", None), ("prize_or_frog", None),
                                             ("padlock", "cpu"), ("padlock", "gpu")])
@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_experiment_configs_validate(experiment, size, kind):
  """Every training config in experiments/ (each size, each agent) passes validation, so a
  typo in one is caught here, not after a launch."""
  c = reproduce.load_config(os.path.join(ROOT, "experiments", f"{experiment}.py"), size)
  c.agent.kind = kind
  task, agent = config_lib.validate(c, num_devices=1)
  assert task.name == c.task.name and agent.horizon == task.horizon


@pytest.mark.parametrize("mutate,match", BAD_CONFIGS)
def test_bad_config_raises_before_anything_is_written(mutate, match, tmp_path):
  c = config_lib.default()
  mutate(c)
  with pytest.raises(ValueError, match=match):
    train.train_and_evaluate(c, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def tensorboard_events(logdir):
  """`logdir`'s event files as TensorBoard itself reads them (every event kept)."""
  events = event_accumulator.EventAccumulator(
      str(logdir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
  events.Reload()
  return events


def test_tensorboard_resume_drops_the_killed_runs_later_events(tmp_path):
  """A run logged steps 10, 20, 30 and was killed after its checkpoint at 20; the resumed
  run logs 30 and 40 again. TensorBoard shows what metrics.jsonl holds: 10 and 20 from the
  first run, 30 and 40 from the second, each step once."""
  writer = metrics.MetricsWriter(tmp_path, resume_step=0)
  for step in (10, 20, 30):
    writer.write({"step": step, "loss": step / 10})
  writer.close()
  writer = metrics.MetricsWriter(tmp_path, resume_step=20)
  for step in (30, 40):
    writer.write({"step": step, "loss": -step / 10})
  writer.close()
  rows = metrics.read_jsonl(tmp_path / "metrics.jsonl")
  assert rows == [{"step": 10, "loss": 1.0}, {"step": 20, "loss": 2.0},
                  {"step": 30, "loss": -3.0}, {"step": 40, "loss": -4.0}]
  assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 2
  loss = tensorboard_events(tmp_path / "tensorboard").Scalars("loss")
  assert [(e.step, e.value) for e in loss] == [(r["step"], r["loss"]) for r in rows]


def test_tensorboard_figures_and_hparams(tmp_path):
  """A PNG arrives pixel for pixel; the nested config arrives flattened in the HParams
  plugin's data, with the final metrics beside it."""
  x, y = np.meshgrid(np.arange(40), np.arange(30))
  pixels = np.stack([6 * x, 8 * y, np.full_like(x, 7), 255 - x], -1).astype(np.uint8)
  Image.fromarray(pixels).save(tmp_path / "plot.png")
  writer = metrics.MetricsWriter(tmp_path / "run")
  writer.figure("figures/plot", tmp_path / "plot.png", 50)
  writer.hparams({"optim": {"learning_rate": 3e-3}, "agent": {"kind": "lstm"},
                  "tensorboard": True, "note": None}, {"kl_action_conditional": 0.25}, 50)
  writer.close()
  (image,) = tensorboard_events(tmp_path / "run" / "tensorboard").Images("figures/plot")
  assert image.step == 50 and (image.width, image.height) == (40, 30)
  np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(image.encoded_image_string))),
                                pixels)
  events = tensorboard_events(tmp_path / "run" / "tensorboard" / "hparams")
  content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
  hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
  assert hparams["optim.learning_rate"].number_value == 3e-3
  assert hparams["agent.kind"].string_value == "lstm"
  assert hparams["tensorboard"].bool_value and hparams["note"].string_value == "null"
  ((step, value),) = [(e.step, e.value) for e in events.Scalars("final/kl_action_conditional")]
  assert (step, value) == (50, 0.25)


def test_tensorboard_in_a_store_it_cannot_reach_is_a_one_line_error(monkeypatch):
  with pytest.raises(ValueError, match="config.tensorboard: .* not to ftp://"):
    metrics.MetricsWriter("ftp://host/run")
  monkeypatch.setitem(sys.modules, "google.cloud.storage", None)  # not installed
  with pytest.raises(ValueError, match="gs:// workdir need google-cloud-storage"):
    metrics.MetricsWriter("gs://bucket/run")


def test_bad_writers_raise_before_anything_is_written(tmp_path):
  with pytest.raises(TypeError, match="writers: must be a sequence of callables"):
    train.train_and_evaluate(config_lib.default(), str(tmp_path / "run"), writers=print)
  with pytest.raises(TypeError, match="writers"):
    train.train_and_evaluate(config_lib.default(), str(tmp_path / "run"), writers=["wandb"])
  assert not os.path.exists(tmp_path / "run")


def test_provenance_in_and_outside_a_checkout_and_in_a_notebook(tmp_path, monkeypatch):
  assert metrics.git_state(str(tmp_path)) == {"git_commit": None, "git_dirty": None}
  if shutil.which("git"):
    git = lambda *args: subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t",
                                        "-c", "user.email=t@t", *args], check=True,
                                       capture_output=True, text=True).stdout.strip()
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "a.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", "code")
    git("commit", "-q", "-m", "code")
    (tmp_path / "venv").mkdir()  # untracked: a package installed in a venv inside a checkout
    assert metrics.git_state(str(tmp_path / "venv")) == {"git_commit": None, "git_dirty": None}
    commit = git("rev-parse", "HEAD")
    assert metrics.git_state(str(tmp_path / "code")) == {"git_commit": commit,
                                                         "git_dirty": False}
    (tmp_path / "code" / "a.py").write_text("x = 2\n")
    assert metrics.git_state(str(tmp_path / "code"))["git_dirty"] is True
  monkeypatch.setattr("sys.argv", ["launch/train.py", "--workdir=a b"])
  assert metrics.command() == "launch/train.py '--workdir=a b'"
  monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))  # imported
  assert metrics.command() == "launch/train.py '--workdir=a b'"  # by a test, not a notebook
  monkeypatch.setattr("sys.argv", ["/venv/ipykernel_launcher.py", "-f", "kernel.json"])
  assert metrics.command() is None


def test_metrics_writer_drops_rows_after_the_resumed_step(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text("".join(json.dumps({"step": s}) + "\n" for s in (10, 20, 30)) + '{"st')
  writer = metrics.MetricsWriter(str(tmp_path), resume_step=20, tensorboard=False)
  writer.write({"step": 30, "loss": float("nan")})
  writer.close()
  assert metrics.read_jsonl(str(path)) == [{"step": 10}, {"step": 20},
                                           {"step": 30, "loss": "nan"}]


def test_progress_bar_and_plain_lines():
  stream = io.StringIO()
  bar = progress.Progress(100, 0, 64, stream=stream, bar=True)
  bar.begin()
  bar.chunk(100, {"loss": 0.5})
  bar.log({"step": 100, "kl_action_interventional": 0.01})
  bar.close()
  text = stream.getvalue()
  assert text.startswith("\r") and "100/100 updates" in text and "upd/s" in text
  assert "env-steps/s" in text and "ETA 0:00" in text and "loss 0.5" in text
  stream = io.StringIO()
  plain = progress.Progress(100, 0, 64, stream=stream, bar=False)
  plain.begin()
  plain.chunk(50, {"loss": 0.5})
  plain.log({"step": 50, "kl_action_interventional": 0.01})
  lines = stream.getvalue().splitlines()
  assert len(lines) == 1 and lines[0].startswith("step     50") and "KL(int) 0.01" in lines[0]
  assert "\r" not in stream.getvalue()
  assert progress.format_duration(3725) == "1:02:05"


def test_jit_rarely_run_computes_what_jit_computes():
  """The faster-compiling jit of initialisation and evaluation: the same parameters bit for
  bit, the same metrics to float tolerance, for each agent kind."""
  import functools
  from causal_meta import evaluate
  for kind in ("lstm", "transformer"):
    c = config_lib.default()
    c.agent.kind = kind
    task, agent = config_lib.validate(c)
    key = jax.random.PRNGKey(3)
    params = jax.jit(agent.init)(key)
    fast = train.jit_rarely_run(agent.init)(key)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(fast)):
      np.testing.assert_array_equal(a, b)
    metrics_fn = functools.partial(evaluate.agent_metrics, task, agent, episodes=64)
    want, got = jax.jit(metrics_fn)(params, key), train.jit_rarely_run(metrics_fn)(params, key)
    for name in want:
      np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-6, err_msg=name)
