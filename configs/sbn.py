r"""Sigmoid belief nets trained with any binary estimator of the registry.

`arg` = ARCH[,protocol=PROTOCOL], ARCH in {linear, nonlinear, two_layer},
PROTOCOL in {quick (default), rebar, dvaepp, disarm}.

Quick (embedded `mnist5k`, 20k steps, CPU: about 4 minutes on 2 cores for
`linear`):

    python -m experiments.main --config=configs/sbn.py:linear --workdir=/tmp/sbn

Published settings (GPU advised: `pip install -e '.[cuda]'`; the first run of
a TFDS dataset downloads it). Each line gives the number the paper reports,
test log-likelihood bound in nats:

* REBAR / RELAX (Tucker et al. 2017; Grathwohl et al. 2018): static binarised
  MNIST, batch 24, Adam 3e-4, 2M steps, 100-sample bound. RELAX paper Table 1
  (best training ELBO, nonlinear): NVIL -101.5, MuProp -101.1, REBAR -81.01,
  RELAX -78.13; linear one layer: -112.5, -111.7, -111.6, -111.20.

    python -m experiments.main --config=configs/sbn.py:nonlinear,protocol=rebar \
        --config.estimator.name=rebar --workdir=runs/rebar_nonlinear

* DVAE++ Table 1 (Vahdat et al. 2018): static MNIST, batch 100, Adam (eps
  1e-3) lr 3e-3 with the piecewise schedule, 1M steps, KL warm-up over 30%,
  eval every 20k steps with 100 samples, best-validation checkpoint, final
  test bound with 4000 samples. Linear: NVIL -108.35, MuProp -108.03, REBAR
  -107.65, Concrete -107.00, overlapping exponential (joint ELBO) -107.98;
  nonlinear: -100.00, -100.66, -100.69, -99.54, -99.16.

    python -m experiments.main --config=configs/sbn.py:linear,protocol=dvaepp \
        --config.estimator.name=overlapping_exponential --workdir=runs/dvaepp_lin

* DisARM (Dong et al. 2020): dynamically binarised MNIST, batch 50, Adam 1e-4
  for encoder and decoder, SGD 1e-2 for the prior logits, 1M steps,
  LeakyReLU(0.3) in the nonlinear model, 100-sample bound.

    python -m experiments.main --config=configs/sbn.py:nonlinear,protocol=disarm \
        --config.estimator.name=disarm --workdir=runs/disarm_nonlinear
"""

import ml_collections

from configs import common

ARCHITECTURES = ("linear", "nonlinear", "two_layer")
PROTOCOLS = ("quick", "rebar", "dvaepp", "disarm")


def model_section(architecture: str = "linear") -> ml_collections.ConfigDict:
  """`config.model` of an SBN (`models.sbn.SBNSection`): 200 units per
  stochastic layer, 200 hidden units in the nonlinear layers' MLPs."""
  model = ml_collections.ConfigDict()
  model.name = "sbn"
  model.architecture = architecture
  model.num_latents = 200
  model.hidden_size = 200
  model.activation = "tanh"
  model.input_baseline = False  # NVIL's input-dependent baseline.
  return model


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The SBN config for `arg` (see the module docstring)."""
  parsed = common.parse_arg(
      arg, "configs/sbn.py", positional=ARCHITECTURES, default="linear",
      keys={"protocol": ("quick", common.one_of(PROTOCOLS))})
  protocol = parsed["protocol"]
  config = common.base_config()
  config.model = model_section(parsed["name"])
  config.estimator.name = "reinforce"
  # Used while the run's estimator is reinforce (the command line may name
  # another one: its own defaults then apply).
  config.estimator_defaults.reinforce = {"baseline": "moving_average"}
  if protocol == "quick":
    config.train.num_steps = 20_000
    config.train.batch_size = 50
    config.train.log_every_steps = 1_000
    config.train.checkpoint_every_steps = 5_000
    config.optim.learning_rate = 1e-3
    config.eval.every_steps = 5_000
    config.eval.num_samples = 100
    config.eval.final_num_samples = 1_000
  elif protocol == "rebar":
    config.data.name = "binarized_mnist"
    config.train.num_steps = 2_000_000
    config.train.batch_size = 24
    config.optim.learning_rate = 3e-4
    config.eval.every_steps = 20_000
    config.eval.final_num_samples = 100
  elif protocol == "dvaepp":
    config.data.name = "binarized_mnist"
    config.train.num_steps = 1_000_000
    config.train.batch_size = 100
    config.train.kl_warmup_steps = 300_000
    config.optim.learning_rate = 3e-3
    config.optim.eps = 1e-3
    config.optim.schedule = "dvae_piecewise"
    config.eval.every_steps = 20_000
    config.eval.final_num_samples = 4_000
  elif protocol == "disarm":
    config.data.name = "mnist"
    config.data.binarization = "dynamic"
    config.model.activation = "leaky_relu"
    config.train.num_steps = 1_000_000
    config.train.batch_size = 50
    config.optim.learning_rate = 1e-4
    config.optim.groups = ml_collections.ConfigDict(
        {"prior_logits": {"name": "sgd", "learning_rate": 1e-2}})
    config.eval.every_steps = 20_000
    config.eval.final_num_samples = 100
  if protocol != "quick":
    config.train.log_every_steps = 1_000
    config.train.checkpoint_every_steps = 20_000
  return config
