r"""The convolutional DVAE++ and its baselines (Vahdat et al. 2018, Table 3).

`arg` = ROW[,protocol=PROTOCOL][,data=DATA] with ROW one of Table 3's rows,

  all_continuous       normal global (N(0, I) prior) + normal local
  mixed                RBM (overlapping exponential, beta 10) + normal local
  mixed_rolfe          RBM (spike-and-exp, beta 4; Rolfe, 2017) + normal local
  rbm_bernoulli        RBM + Bernoulli local (marginal KLs, Sec. 4.2)
  bernoulli_bernoulli  factorial Bernoulli global + Bernoulli local (Sec. 4.2)

PROTOCOL in {quick (default), paper} and DATA one of Table 3's columns:
`mnist` (default; statically binarised), `mnist_dynamic` (dynamically
binarised), `omniglot`, `caltech101` (silhouettes; the file by
`--config.data.path`) and `cifar10`. With the quick protocol `mnist` means
the embedded `mnist5k`; the others always name their own data (TFDS, or
the local Caltech-101 file). As the paper, the multi-scale (conditional)
decoder for every column but the two MNIST ones.
Every size of `models.dvaepp_conv` is a `config.model` field, so a GPU user
can scale any of them (`--config.model.channels=128`).

Quick protocol (embedded `mnist5k`, 28 x 28 binary, CPU): a small model
(16 global units in 2 groups, 4 local groups x 8 variables per location at
7 x 7, 16 filters, one residual block per stack, unconditional factorial
decoder as the paper's MNIST columns), 3000 steps of batch 32, Adam 1e-3
(eps 1e-3), KL warm-up over 30 %, 100 persistent chains x 5 Gibbs sweeps,
100-sample bounds (validation every 1000 steps and final). About 0.2 s
per step on one CPU core with the steps and the local groups unrolled
(the registry's `unroll_on_cpu`, `config.model.unroll_groups`: XLA's CPU
convolutions run ~10x slower inside a loop body), so 3000 steps take
~15 minutes with evaluation; other rows by replacing `mixed` (e.g.
`:all_continuous`):

    python -m experiments.main --config=configs/dvaepp_conv.py:mixed --workdir=/tmp/dvaepp_conv_mixed

Paper protocol (GPU advised), the same command with `:ROW,protocol=paper`
(`:ROW,protocol=paper,data=cifar10` for CIFAR-10, equivalently
`--config.data.name=cifar10 --config.data.binarization=none
--config.model.num_global=128 --config.model.decoder=multiscale`): TFDS
`binarized_mnist` (or `cifar10`), 16 local groups x 32 variables per
location, 16 global binary units (128 for CIFAR-10) in 2 hierarchical
groups (the paper cross-validates 1, 2, 4: `--config.model.global_groups`),
64 filters, 2 residual blocks per stack with squeeze-and-excitation and
weight normalisation, factorial decoder for MNIST and the multi-scale one
with a 10-component discretised logistic mixture for CIFAR-10; batch 100,
Adam (eps 1e-3) 3e-3 with the DVAE piecewise decay, 1M steps, KL warm-up
over 30 %, validation every 20k steps, best-validation checkpoint, final
bound with 4000 importance samples of the binary (beta = infinity) model;
1000 chains x 40 sweeps per step, RBM weight decay 1e-4 on W (the
authors' public code), log Z exact when a half has <= 20 units (MNIST) and
by AIS with 1024 chains x 1000 temperatures otherwise (CIFAR-10); all in
the RBM section `config.model.rbm` (`stochastic.rbm_prior.RBMPrior`, with
parallel tempering and the chain-health check: see `configs/dvaepp.py`).
Evaluation batches of 20 in chunks of 20 samples keep 400 images in
flight.

Published test log-likelihoods (Table 3, 4000 samples; nats, MNIST static /
MNIST dynamic / OMNIGLOT / Caltech-101; CIFAR-10 bits per dim):

  all_continuous       -79.40 / -78.59 / -92.51 / -82.24 / 3.40
  mixed_rolfe          -79.04 / -78.65 / -92.56 / -81.95 / 3.39
  mixed                -79.17 / -78.49 / -92.38 / -81.88 / 3.38
  rbm_bernoulli        -79.72 / -79.55 / -93.95 / -85.40 / 3.59
  bernoulli_bernoulli  -79.90 / -79.62 / -93.87 / -86.57 / 3.62

(unconditional decoder for the two MNIST columns, conditional otherwise).
"""

import ml_collections

from configs import common
from discrete_vi.stochastic import rbm_prior

# row -> (global prior, local latents, smoothing estimator)
ROWS = {
    "all_continuous": ("normal", "normal", "overlapping_exponential"),
    "mixed": ("rbm", "normal", "overlapping_exponential"),
    "mixed_rolfe": ("rbm", "normal", "spike_and_exp"),
    "rbm_bernoulli": ("rbm", "bernoulli", "overlapping_exponential"),
    "bernoulli_bernoulli": ("bernoulli", "bernoulli",
                            "overlapping_exponential"),
}
PROTOCOLS = ("quick", "paper")
# DATA -> (config.data.name, binarization, decoder, global units)
DATA_SETS = {
    "mnist": ("binarized_mnist", "static", "factorial", 16),
    "mnist_dynamic": ("mnist", "dynamic", "factorial", 16),
    "omniglot": ("omniglot", "dynamic", "multiscale", 16),
    "caltech101": ("caltech101", "static", "multiscale", 16),
    "cifar10": ("cifar10", "none", "multiscale", 128),
}
DATA = tuple(DATA_SETS)


def model_section(row: str) -> ml_collections.ConfigDict:
  """`config.model` of a row at the paper's sizes (protocols may shrink)."""
  global_prior, local_latent, _ = ROWS[row]
  model = ml_collections.ConfigDict()
  model.name = "dvaepp_conv"
  model.global_prior = global_prior  # rbm | bernoulli | normal
  model.local_latent = local_latent  # normal | bernoulli
  model.num_global = 16  # global units (RBM: two halves of 8)
  model.global_groups = 2  # hierarchical groups of q(z | x): 1, 2 or 4
  model.global_hidden = 256  # hidden units of the global heads
  model.num_local_groups = 16
  model.local_channels = 32  # local variables per location and group
  model.local_level = 2  # intermediate scale: 28 -> 7 x 7, 32 -> 8 x 8
  model.decoder = "factorial"  # factorial | multiscale
  model.channels = 64  # filters of every residual stack
  model.num_blocks = 2  # residual blocks per stack
  model.squeeze_excitation = 4  # SE reduction ratio (None: off)
  model.weight_norm = True
  model.activation = "elu"
  model.num_mixtures = 10  # discretised logistics per 8-bit value
  model.kl_balancing = True
  # Unroll the lax.scan over local groups (CPU: faster steps, longer compile).
  model.unroll_groups = True
  # The RBM prior's settings (`stochastic.rbm_prior.RBMPrior`, its defaults
  # the authors'): persistent chains and sweeps, weight decay, log Z.
  model.rbm = rbm_prior.config_section()
  model.sample_columns = 10  # samples sharing one global sample (Fig. 4)
  return model


def _quick(config: ml_collections.ConfigDict) -> None:
  """The CPU protocol on the embedded data (in place)."""
  config.model.num_local_groups = 4
  config.model.local_channels = 8
  config.model.channels = 16
  config.model.num_blocks = 1
  config.model.global_hidden = 128
  config.model.rbm.gibbs_chains = 100
  config.model.rbm.gibbs_sweeps = 5
  config.train.num_steps = 3_000
  config.train.batch_size = 32
  config.train.kl_warmup_steps = 900
  config.train.log_every_steps = 100
  config.train.checkpoint_every_steps = 1_000
  config.optim.learning_rate = 1e-3
  config.eval.every_steps = 1_000
  config.eval.num_samples = 100
  config.eval.final_num_samples = 100
  config.eval.batch_size = 50
  config.eval.chunk_size = 10
  config.model.rbm.ais_num_chains = 256


def _paper(config: ml_collections.ConfigDict) -> None:
  """The published protocol (in place; the data set by `get_config`)."""
  config.train.num_steps = 1_000_000
  config.train.batch_size = 100
  config.train.kl_warmup_steps = 300_000
  config.train.log_every_steps = 1_000
  config.train.checkpoint_every_steps = 20_000
  config.optim.learning_rate = 3e-3
  config.optim.schedule = "dvae_piecewise"
  config.eval.every_steps = 20_000
  config.eval.num_samples = 100
  config.eval.final_num_samples = 4_000
  config.eval.batch_size = 20
  config.eval.chunk_size = 20


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The Table 3 config for `arg` (see the module docstring)."""
  parsed = common.parse_arg(
      arg, "configs/dvaepp_conv.py", positional=tuple(ROWS), default="mixed",
      keys={"protocol": ("quick", common.one_of(PROTOCOLS)),
            "data": ("mnist", common.one_of(DATA))})
  row = parsed["name"]
  config = common.base_config()
  config.model = model_section(row)
  config.estimator.name = ROWS[row][2]  # unused by all_continuous
  config.optim.eps = 1e-3
  # One unrolled step per call: XLA's CPU convolutions run ~10x slower in
  # a scan's loop body (`training.steps.fuse_steps`).
  config.train.steps_per_jit = 1
  name, binarization, decoder, num_global = DATA_SETS[parsed["data"]]
  config.model.decoder, config.model.num_global = decoder, num_global
  if parsed["protocol"] == "quick":
    _quick(config)
  else:
    _paper(config)
  if parsed["protocol"] == "paper" or parsed["data"] != "mnist":
    config.data.name, config.data.binarization = name, binarization
  return config
