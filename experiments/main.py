r"""Trains and evaluates one model: the only place that defines flags.

    python -m experiments.main --config=configs/sbn.py:linear --workdir=/tmp/sbn

Any config field can be overridden, e.g. `--config.estimator.name=vimco
--config.estimator.num_samples=5`. Re-running the same command resumes from
the workdir's last checkpoint.

Batches are split over all devices (`config.train.data_parallel`).
On several hosts, run the same command on every host with
DISCRETE_VI_DISTRIBUTED=1 and, unless `jax.distributed.initialize()`
detects the cluster (SLURM, Cloud TPU, ...), JAX_COORDINATOR_ADDRESS
(host:port of process 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID.
"""

import os

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from discrete_vi import training
from experiments import launcher



def define_flags(flag_values: flags.FlagValues = flags.FLAGS,
                 argv: list[str] | None = None):
  """Defines --config and --workdir on `flag_values`.

  Args:
    flag_values: where to define them (tests pass a fresh `FlagValues`).
    argv: the command line the `--config.<field>` overrides are read from
      (None: `sys.argv`, as ml_collections does).

  Returns:
    The two flag holders `(config, workdir)`.
  """
  config = config_flags.DEFINE_config_file(
      "config", None, "Path to a config file, e.g. configs/sbn.py:linear.",
      flag_values=flag_values, lock_config=True, sys_argv=argv)
  workdir = flags.DEFINE_string("workdir", None, "Directory for all outputs.",
                                flag_values=flag_values)
  reevaluate = flags.DEFINE_bool(
      "reevaluate", False, "Evaluate a finished run again (otherwise its "
      "results.json is reported as it is).", flag_values=flag_values)
  flags.mark_flags_as_required(["config", "workdir"], flag_values=flag_values)
  return config, workdir, reevaluate


def run(config, workdir: str, reevaluate: bool = False) -> dict:
  """Trains and evaluates `config` in `workdir`; returns results.json's dict.

  Raises:
    ValueError: for a bad config or data, before `workdir` is written.
  """
  if os.environ.get("DISCRETE_VI_DISTRIBUTED") == "1":  # multi-host
    jax.distributed.initialize(**{
        arg: int(os.environ[name]) for arg, name in
        (("num_processes", "JAX_NUM_PROCESSES"),
         ("process_id", "JAX_PROCESS_ID")) if name in os.environ})
  results = training.train_and_evaluate(config, workdir,
                                        reevaluate=reevaluate)
  print(f"Outputs in {workdir}: results.json (test bound "
        f"{results['test_log_likelihood']:.2f} nats), metrics.jsonl, "
        f"samples.png, curves.png, tensorboard/, checkpoints/")
  return results


def main(argv):
  launcher.prepare(argv)
  run(_CONFIG.value, _WORKDIR.value, _REEVALUATE.value)


if __name__ == "__main__":
  # Defined only when run as a program, so that tests and other launchers
  # can import `run` and `define_flags` next to their own flags.
  _CONFIG, _WORKDIR, _REEVALUATE = define_flags()
  app.run(main)
