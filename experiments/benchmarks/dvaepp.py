"""`dvaepp` and `dvaepp_ais`: the cost of the DVAE++'s RBM prior.

`dvaepp`:

1. Train step of the RBM-prior model (`configs/dvaepp.py:rbm`, two groups
   of 200, linear links, batch 100) split into its parts, for a grid of
   persistent chains x sweeps per step: the whole step, the same model's
   step with the Gibbs update removed (chains frozen: the encoder / decoder
   share), the Gibbs sweeps alone, and the same-size model with a factorial
   prior; the loop's fused train steps (`measure.fused_train_step`), all
   timed round-robin in one process, reported as ratios to the
   factorial-prior step.
2. AIS: time and standard error of the log Z estimate vs number of chains
   and of inverse temperatures, on RBMs with random couplings whose exact
   log Z is computable (20 + 200 units: the 20-unit half enumerated), so
   the table also shows the actual error; and the time on 200 + 200 units
   (the paper's size).
3. Memory of 1000 persistent chains of 400 units: the chain state's bytes
   and XLA's compiled temporary and output memory of 40 sweeps.

`dvaepp_ais [RUN_DIR]`: log Z of a trained RBM (the quick protocol's
`rbm,layers=2`, trained in RUN_DIR first when it holds no finished run) by
AIS with 1,000 and 10,000 temperatures: whether the evaluation default has
converged.

All timings are best-of-repeats wall-clock on this machine.
"""

import copy
import dataclasses

import jax

from configs import dvaepp as dvaepp_config
from discrete_vi.distributions import rbm
from discrete_vi.stochastic import rbm_prior
from discrete_vi.training import setup
from experiments.benchmarks import measure

REPEATS = 3
BATCH = 100
CHAIN_GRID = ((100, 5), (1000, 5), (100, 40), (1000, 40))
AIS_CHAINS = (64, 256, 1024)
AIS_TEMPERATURES = (100, 300, 1000)
COUPLING_SCALE = 0.1


def random_rbm(key, n1: int, n2: int, scale: float) -> rbm.RBMParams:
  """Biases N(0, 1) and couplings N(0, scale^2)."""
  k1, k2, k3 = jax.random.split(key, 3)
  return rbm.RBMParams(jax.random.normal(k1, (n1,)),
                       jax.random.normal(k2, (n2,)),
                       scale * jax.random.normal(k3, (n1, n2)))


def _fused(config, run, model, xs):
  """`(fn, state, (xs,))` for `measure.time_interleaved`: the loop's fused
  train steps of `model` with the optimiser and estimator of `run`."""
  return measure.fused_train_step(config, run, model), run.state, (xs,)


class _FrozenChainsPrior(rbm_prior.RBMPrior):
  """An RBM prior whose persistent chains never move."""

  def update_state(self, key, rbm_params, chains):
    del key, rbm_params  # unused
    return chains, {}


def frozen_chains(model):
  """A copy of a DVAE++ model (dense or convolutional) whose persistent
  chains are never updated: its step is the RBM-prior step minus the Gibbs
  sweeps."""
  frozen = copy.copy(model)
  frozen.rbm_prior = _FrozenChainsPrior(
      **dataclasses.asdict(model.rbm_prior))
  return frozen


def _row_run(row: str, dataset, *, chains: int = 1000, sweeps: int = 40,
             batch: int = BATCH):
  """`(config, setup)` of a row at `batch` with the given chains."""
  config = dvaepp_config.get_config(row)
  config.train.batch_size = batch
  config.model.rbm.gibbs_chains, config.model.rbm.gibbs_sweeps = chains, sweeps
  return config, setup.create_train_state(config, dataset)


def step_table(dataset, rbm_row: str = "rbm,layers=2",
               factorial_row: str = "factorial,layers=2",
               chain_grid=CHAIN_GRID, batch: int = BATCH) -> list[str]:
  """Section 1: the RBM-prior step split, as ratios to a factorial prior."""
  factorial_config, factorial = _row_run(factorial_row, dataset, batch=batch)
  steps = factorial_config.train.steps_per_jit
  xs = measure.first_batches(dataset, batch, steps)
  lines = [f"### Train step of `{rbm_row}` (batch {batch}, "
           f"{steps} steps fused per call) vs `{factorial_row}`",
           "", "| chains x sweeps | factorial prior (ms) | RBM prior (ms) | "
           "RBM, chains frozen (ms) | Gibbs sweeps alone (ms) | RBM / "
           "factorial | frozen / factorial | Gibbs share of the RBM step |",
           "|---|---|---|---|---|---|---|---|"]
  for chains, sweeps in chain_grid:
    config, run = _row_run(rbm_row, dataset, chains=chains, sweeps=sweeps,
                           batch=batch)
    rbm_params = run.model.rbm_params(run.state.params)
    gibbs = jax.jit(lambda c, k: (rbm.gibbs_sweeps(
        k, rbm_params, c, sweeps * steps), None))
    seconds = measure.time_interleaved(
        [_fused(factorial_config, factorial, factorial.model, xs),
         _fused(config, run, run.model, xs),
         _fused(config, run, frozen_chains(run.model), xs),
         (gibbs, run.state.model_state, (jax.random.PRNGKey(0),))],
        repeats=REPEATS, per_repeat=2)
    base, full, frozen, alone = (t * 1e3 / steps for t in seconds)
    lines.append(f"| {chains} x {sweeps} | {base:.1f} | {full:.1f} | "
                 f"{frozen:.1f} | {alone:.1f} | {full / base:.2f} | "
                 f"{frozen / base:.2f} | {alone / full:.0%} |")
  return lines


def ais_table(small=(20, 200), big=(200, 200), chains_grid=AIS_CHAINS,
              temperatures_grid=AIS_TEMPERATURES) -> list[str]:
  """Section 2: AIS error, standard error and time (sizes as arguments so
  that a test can run it small)."""
  params = random_rbm(jax.random.PRNGKey(0), *small, COUPLING_SCALE)
  exact = float(rbm.exact_log_z(params))
  lines = [f"### AIS on a {small[0]} + {small[1]}-unit RBM (couplings N(0, "
           f"{COUPLING_SCALE}²), biases N(0, 1); exact log Z = {exact:.3f})",
           "", "| chains | temperatures | log Z − exact | standard error | "
           "time (s) |", "|---|---|---|---|---|"]
  for chains in chains_grid:
    for temperatures in temperatures_grid:
      key = jax.random.PRNGKey(chains + temperatures)
      result = rbm.ais_log_z(key, params, num_chains=chains,
                             num_temperatures=temperatures)
      seconds = measure.best_time(lambda k: rbm.ais_log_z(
          k, params, num_chains=chains, num_temperatures=temperatures).log_z,
                                  key)
      lines.append(f"| {chains} | {temperatures} | "
                   f"{float(result.log_z) - exact:+.4f} | "
                   f"{float(result.stderr):.4f} | {seconds:.3f} |")
  big_params = random_rbm(jax.random.PRNGKey(1), *big, COUPLING_SCALE)
  seconds = measure.best_time(lambda k: rbm.ais_log_z(k, big_params).log_z,
                              jax.random.PRNGKey(2), repeats=1)
  result = rbm.ais_log_z(jax.random.PRNGKey(2), big_params)
  lines += ["", f"{big[0]} + {big[1]} units, 1024 chains x 1000 "
            f"temperatures (the evaluation default): {seconds:.2f} s, "
            f"standard error {float(result.stderr):.4f}."]
  return lines


def memory_lines(num_chains: int = 1000, n1: int = 200, n2: int = 200,
                 num_sweeps: int = 40) -> list[str]:
  """Section 3: bytes of the chains and of 40 compiled sweeps."""
  params = random_rbm(jax.random.PRNGKey(3), n1, n2, COUPLING_SCALE)
  chains = rbm.init_chains(jax.random.PRNGKey(4), params, num_chains)
  state_bytes = sum(a.nbytes for a in jax.tree_util.tree_leaves(chains))
  compiled = jax.jit(lambda k, p, c: rbm.gibbs_sweeps(
      k, p, c, num_sweeps)).lower(jax.random.PRNGKey(5), params,
                                  chains).compile()
  mem = measure.memory(compiled)
  seconds = measure.best_time(compiled, jax.random.PRNGKey(5), params, chains,
                              repeats=REPEATS)
  lines = [f"### Memory of {num_chains} chains of {n1} + {n2} units", "",
           f"Chain state: {state_bytes / measure.MIB:.2f} MiB (float32 0/1)."]
  if "temp" in mem:
    lines.append(
        f"{num_sweeps} compiled sweeps: temporaries "
        f"{mem['temp'] / measure.MIB:.2f} MiB, outputs "
        f"{mem['output'] / measure.MIB:.2f} MiB, arguments "
        f"{mem['argument'] / measure.MIB:.2f} MiB; "
        f"{seconds * 1e3:.1f} ms per call.")
  return lines


AIS_CONVERGENCE_ROW = "rbm,layers=2"  # the quick protocol's RBM row
AIS_CONVERGENCE_TEMPERATURES = (1000, 10000)


def trained_rbm(run_dir: str) -> rbm.RBMParams:
  """The RBM of the best-validation checkpoint of a run of
  `configs/dvaepp.py:rbm,layers=2` in `run_dir`, trained there first (the
  quick protocol, resumable) when it holds no finished run."""
  import os  # pylint: disable=g-import-not-at-top
  from discrete_vi.training import loop  # pylint: disable=g-import-not-at-top
  if not os.path.exists(os.path.join(run_dir, "results.json")):
    loop.train_and_evaluate(dvaepp_config.get_config(AIS_CONVERGENCE_ROW),
                            run_dir)
  model, state, _ = loop.restore_run(run_dir)
  return model.rbm_params(state.params)


def ais_convergence(params: rbm.RBMParams,
                    temperatures=AIS_CONVERGENCE_TEMPERATURES,
                    num_chains: int = 1024, repeats: int = 3) -> list[str]:
  """log Z of a trained RBM by AIS at each number of temperatures
  (`repeats` independent estimates each), and how far apart the settings
  are in their standard errors: whether 1,000 temperatures (our
  evaluation default) have converged on the model we train, or bias the
  bound (an under-converged AIS under-estimates log Z in expectation)."""
  lines = [f"### AIS convergence on the trained quick-protocol RBM "
           f"(`configs/dvaepp.py:{AIS_CONVERGENCE_ROW}`, best-validation "
           f"checkpoint; {num_chains} chains)", "",
           "| temperatures | log Z (mean of repeats) | standard error of one "
           "| spread of repeats | time of one (s) |", "|---|---|---|---|---|"]
  results = {}
  for i, count in enumerate(temperatures):
    draws, errors = [], []
    for r in range(repeats):
      key = jax.random.PRNGKey(1000 * i + r)
      result = rbm.ais_log_z(key, params, num_chains=num_chains,
                             num_temperatures=count)
      draws.append(float(result.log_z))
      errors.append(float(result.stderr))
    seconds = measure.best_time(lambda k, c=count: rbm.ais_log_z(
        k, params, num_chains=num_chains, num_temperatures=c).log_z,
                                jax.random.PRNGKey(7), repeats=1)
    mean = sum(draws) / repeats
    spread = max(draws) - min(draws)
    se = (sum(e * e for e in errors) / repeats) ** 0.5  # of one estimate
    results[count] = (mean, se / repeats ** 0.5)
    lines.append(f"| {count} | {mean:.3f} | {se:.3f} | {spread:.3f} | "
                 f"{seconds:.2f} |")
  (low, low_se), (high, high_se) = (results[temperatures[0]],
                                    results[temperatures[-1]])
  combined = (low_se ** 2 + high_se ** 2) ** 0.5
  lines += ["", f"{temperatures[-1]} minus {temperatures[0]} temperatures: "
            f"{high - low:+.3f} nats = {(high - low) / max(combined, 1e-12):+.1f}"
            f" standard errors of the difference of the means."]
  return lines


def ais_report(run_dir: str = "runs/benchmark_dvaepp_ais") -> str:
  """`python -m experiments.benchmark dvaepp_ais [OUTPUT.md] [RUN_DIR]`."""
  lines = ["## DVAE++: does AIS with 1,000 temperatures converge?", "",
           f"The trained RBM of `{run_dir}`; times are wall-clock on this "
           "machine (other jobs included).", ""]
  lines += ais_convergence(trained_rbm(run_dir))
  return "\n".join(lines) + "\n"


def report() -> str:
  """The whole benchmark as markdown."""
  from discrete_vi import data as data_lib  # pylint: disable=g-import-not-at-top
  dataset = data_lib.load_dataset("mnist5k")
  lines = ["## DVAE++: the cost of an RBM prior", ""]
  lines += step_table(dataset) + [""] + ais_table() + [""] + memory_lines()
  return "\n".join(lines) + "\n"
