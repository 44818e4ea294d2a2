"""One persistent compilation cache per test worker: the tests, and the launchers they start
as subprocesses, compile many identical programs (the default bandit's update, a run resumed
after a kill, a notebook's cells). Each pytest-xdist worker has its own temporary folder, so
that no two processes write one entry at once (JAX writes an entry in place, unlocked); the
two-process test gives each of its processes a folder of its own (tests/test_multiprocess.py).
Removed when the worker ends."""

import os
import shutil
import tempfile

import jax
from jax.experimental.compilation_cache import compilation_cache

CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"


def pytest_configure(config):
  worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
  path = config.causal_meta_jax_cache = tempfile.mkdtemp(prefix=f"causal_meta_tests_{worker}_")
  # Environment variables, so that the subprocesses a test starts use it too.
  os.environ.update({CACHE_ENV: path, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"})
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  compilation_cache.reset_cache()  # the cache reads its settings once


def pytest_unconfigure(config):
  shutil.rmtree(config.causal_meta_jax_cache, ignore_errors=True)
