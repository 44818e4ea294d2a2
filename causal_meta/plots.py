"""Figures, written to PNG files.

Built with matplotlib's object-oriented `Figure` (no pyplot, no global backend switch), so it
works headless in batch jobs and leaves a notebook's inline backend alone. matplotlib is
imported inside the drawing functions: `import causal_meta` stays free of it (about a fifth of
the package's import time). Files are written through `etils.epath`, so a gs:// path works.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from etils import epath


def action_raster(path: str, rows: Mapping[str, tuple[np.ndarray, np.ndarray]],
                  num_actions: int, title: str = "") -> str:
  """[O] Remark 11's table as a picture: for each named policy, episodes of actions and rewards.

  rows: name -> (actions int [E, T], rewards [E, T]); actions are drawn 1-indexed as in the paper.
  """
  # Here rather than at the top: importing the package must not import matplotlib.
  import matplotlib
  from matplotlib.figure import Figure

  names = list(rows)
  episodes = max(len(rows[n][0]) for n in names)
  horizon = max(rows[n][0].shape[1] for n in names)
  fig = Figure(figsize=(0.36 * horizon + 2.2, 0.75 * episodes * len(names) + 0.9))
  axes = fig.subplots(len(names), 1, squeeze=False)
  cmap = matplotlib.colormaps["tab10"].resampled(num_actions)
  for ax, name in zip(axes[:, 0], names):
    actions, rewards = (np.asarray(x) for x in rows[name])
    ax.imshow(actions, cmap=cmap, vmin=-0.5, vmax=num_actions - 0.5, aspect="auto")
    for e in range(actions.shape[0]):
      for t in range(actions.shape[1]):
        ax.text(t, e, f"{actions[e, t] + 1}", ha="center", va="center", fontsize=8,
                color="white", fontweight="bold" if rewards[e, t] > 0 else "normal")
        if rewards[e, t] > 0:
          ax.plot(t, e + 0.38, marker="^", color="black", markersize=3)
    ax.set_yticks(range(actions.shape[0]), [f"ep {e + 1}" for e in range(actions.shape[0])])
    ax.set_xticks(range(actions.shape[1]), [str(t + 1) for t in range(actions.shape[1])],
                  fontsize=7)
    ax.set_title(f"{name}  (digit = arm pulled, bold with ▲ = reward 1)", fontsize=9)
  axes[-1, 0].set_xlabel("step t")
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  return save(fig, path)


def curves(path: str, series: Mapping[str, Sequence[float]], xlabel: str, ylabel: str,
           title: str = "", logy: bool = False, x: Sequence[float] | None = None) -> str:
  """Line plot of named series (e.g. best-action rate over t, KL over env steps).

  series: name -> values [N] (N may differ per name); x: shared abscissa [N], else 1..N.
  """
  from matplotlib.figure import Figure  # here, not at the top: see action_raster

  fig = Figure(figsize=(6, 3.6))
  ax = fig.subplots()
  for name, ys in series.items():
    ys = np.asarray(ys)
    xs = np.arange(1, len(ys) + 1) if x is None else np.asarray(x)
    ax.plot(xs, ys, label=name, marker="." if len(ys) < 60 else None)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  if logy:
    ax.set_yscale("log")
  if title:
    ax.set_title(title, fontsize=10)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  return save(fig, path)


def save(fig, path: str, dpi: int = 120) -> str:
  """Writes `fig` as PNG to `path` (local or gs://), creating parent directories; returns
  path."""
  out = epath.Path(path)
  out.parent.mkdir(parents=True, exist_ok=True)
  # An open file object rather than the path: matplotlib only writes local paths itself.
  with out.open("wb") as f:
    fig.savefig(f, format="png", dpi=dpi)
  return path
