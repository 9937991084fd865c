r"""HD-VAE (Lievin et al., 2019) and its Gaussian baseline.

`arg` = LATENT[,layers=L][,units=N][,protocol=PROTOCOL], LATENT in
{discrete, normal}, PROTOCOL in {quick (default), paper}. The model is the
ladder VAE with skip connections (Eq. 20; `--config.model.architecture=`
lvae / skip_vae / vae for Eqs. 17-19), every stochastic layer a variational
memory layer with product keys (d_1 = d_2 = 8) or, for `normal`, factorial
Gaussians with the same numbers of variables (Appendix A).

Without `units`, the architectures of Table 2: N = 16 (+ 8 + 4 + 4 ...)
variables with K = 16^2 (+ 8^2 + 4^2 + 4^2 ...) classes, layer 1 first.
With `units=N`, the relaxation-bias grid of Table 4: K = 256 everywhere and
the N variables split evenly over the L layers (the lower layers get the
remainder).

Training (Appendix A): the relaxed surrogate of Eq. 5 with f of Eq. 14
(`gumbel_softmax` on categorical logits; any categorical estimator of the
registry by `--config.estimator.name=`), freebits 2 nats per stochastic
layer and per example, Adamax 2e-3 with the memory values at 2e-2, batch
128, tau piecewise linear 0.8 -> 0.3 -> 0.1. `results.json` adds `test_kl`
(tau = 0), and for discrete rows `test_relaxation_bias` (the mean of
L_1^{tau=0.1} - L_1^{tau=0}: delta of Eq. 6 is its absolute value) with
`test_relaxation_bias_stderr`.

Quick protocol (embedded `mnist5k`, CPU): 32 filters, one residual block
per connection, dropout 0.2, 2,000 steps with the tau knots at 40 % and
80 % of the run, 10-sample validation and 100-sample test bounds. About
6-8 minutes per row on one CPU core at one layer (measured 490 s discrete,
350 s normal, evaluation included; one unrolled step per call, see
`training.steps.fuse_steps`):

    python -m experiments.main --config=configs/hdvae.py:discrete \
        --workdir=/tmp/hdvae_discrete
    python -m experiments.main --config=configs/hdvae.py:normal \
        --workdir=/tmp/hdvae_normal

Other rows take the same command with these arguments (quick, or with
`protocol=paper`): `discrete,layers=2`, `normal,layers=3`, and the Table 4
grid `discrete,layers=L,units=N` for L in 1..6, N in 12, 24, 48, 98.

Paper protocol (`protocol=paper`; TFDS `binarized_mnist`, GPU advised: `pip
install -e '.[cuda]'`): 64 filters, three gated residual blocks per
connection, dropout 0.5, tau 0.8 -> 0.3 over 2e5 steps then -> 0.1 over
2e5, 1e6 steps with the best validation checkpoint ("until they overfit"),
L_1000. Published test numbers (nats; Table 1, L_1000 at tau = 0, discrete
vs normal): `layers=1` -87.34 vs -90.61 (KL 26.46 vs 26.75); `layers=2`
-80.52 vs -81.46; `layers=3` -79.39 vs -80.07. Table 4 (delta at
tau = 0.1, N = 12 / 24 / 48 / 98): L=1 2.08 / 2.85 / 3.11 / 3.23; L=2 1.31 /
1.59 / 1.75 / 1.84; L=3 1.37 / 2.08 / 2.73 / 2.85; L=6 1.59 / 1.85 / 2.14 /
2.90.
"""

import ml_collections

from configs import common

LATENTS = ("discrete", "normal")
PROTOCOLS = ("quick", "paper")
# Table 2: layer l's variables and classes (layer 1 first), extended by the
# last entry for deeper models.
TABLE2_VARIABLES = (16, 8, 4)
TABLE2_CLASSES = (16**2, 8**2, 4**2)
BIAS_GRID_CLASSES = 256
TEMPERATURE_STEPS = ((0, 0.8), (200_000, 0.3), (400_000, 0.1))
TEMPERATURE_FRACTIONS = ((0, 0.8), (0.4, 0.3), (0.8, 0.1))
TEMPERATURE_ESTIMATORS = ("gumbel_softmax", "st_gumbel_softmax", "gumbel_rao")


def layer_sizes(layers: int, units: int | None) -> tuple[tuple, tuple]:
  """(N_l, K_l) per layer: Table 2 without `units`, else the Table 4 grid
  (K = 256, N split evenly, remainder to the lower layers)."""
  if units is None:
    pick = lambda table, l: table[min(l, len(table) - 1)]
    return (tuple(pick(TABLE2_VARIABLES, l) for l in range(layers)),
            tuple(pick(TABLE2_CLASSES, l) for l in range(layers)))
  if units < layers:
    raise ValueError(f"configs/hdvae.py: units={units} must be >= layers="
                     f"{layers} (one variable per layer at least).")
  base, extra = divmod(units, layers)
  return (tuple(base + (l < extra) for l in range(layers)),
          (BIAS_GRID_CLASSES,) * layers)


def model_section(latent: str, layers: int, units: int | None
                  ) -> ml_collections.ConfigDict:
  """`config.model` of HD-VAE (paper widths; the quick protocol shrinks)."""
  num_variables, num_classes = layer_sizes(layers, units)
  model = ml_collections.ConfigDict()
  model.name = "hdvae"
  model.latent = latent
  model.architecture = "skip_lvae"
  model.num_variables = num_variables
  model.num_classes = num_classes
  model.filters = 64
  model.num_blocks = 3
  # 1 x 1 convolutions to this many channels before every query net and
  # after every embedding's dense map (0: dense maps of the whole 7 x 7 x F
  # feature maps, ~4x the parameters for discrete layers; BUILD_NOTES).
  model.query_channels = 8
  model.dropout = 0.5
  model.key_dim = 8
  model.value_dim = 8
  model.product_keys = True
  # Terms (b), (c) of Eq. 14 under training: "relaxed" Eq. 15 (the rate
  # gets its pathwise gradient), "straight_through" (Eq. 14's value, ST
  # gradient), "hard" Eq. 14 (no rate gradient to the encoder), "concrete"
  # Eq. 16 (gumbel_softmax only).
  model.log_mass = "relaxed"
  model.freebits = 2.0
  model.freebits_mode = "sample"
  model.decoder = "conv"  # "lipschitz": the relaxed-ELBO decoder (L = 1)
  model.lipschitz_scale = 10.0
  model.bias_temperature = 0.1
  return model


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The HD-VAE config for `arg` (see the module docstring)."""
  parsed = common.parse_arg(
      arg, "configs/hdvae.py", positional=LATENTS, default="discrete",
      keys={"layers": (1, common.positive_int),
            "units": (None, common.positive_int),
            "protocol": ("quick", common.one_of(PROTOCOLS))})
  quick = parsed["protocol"] == "quick"
  config = common.base_config()
  config.model = model_section(parsed["name"], parsed["layers"],
                               parsed["units"])
  config.estimator.name = "gumbel_softmax"
  config.estimator.distribution = "categorical"
  config.estimator.knots_as_fractions = quick
  knots = TEMPERATURE_FRACTIONS if quick else TEMPERATURE_STEPS
  for name in TEMPERATURE_ESTIMATORS:
    config.estimator_defaults[name] = {"temperature_knots": knots}

  config.train.batch_size = 128
  # One unrolled step per call: XLA's CPU convolutions run ~10x slower in
  # a scan's loop body (`training.steps.fuse_steps`).
  config.train.steps_per_jit = 1
  config.optim.name = "adamax"
  config.optim.learning_rate = 2e-3
  if parsed["name"] == "discrete":  # sparse updates of the memory values
    config.optim.groups = ml_collections.ConfigDict(
        {"values": {"name": "adamax", "learning_rate": 2e-2}})
  if quick:
    config.model.filters = 32
    config.model.num_blocks = 1
    config.model.dropout = 0.2
    config.train.num_steps = 2_000
    config.train.log_every_steps = 100
    config.train.checkpoint_every_steps = 500
    config.eval.every_steps = 500
    config.eval.num_samples = 10  # validation (checkpoint choice) only
    config.eval.final_num_samples = 100
  else:
    config.data.name = "binarized_mnist"
    config.train.num_steps = 1_000_000
    config.train.log_every_steps = 1_000
    config.train.checkpoint_every_steps = 10_000
    config.eval.every_steps = 10_000
    config.eval.num_samples = 100
    config.eval.final_num_samples = 1_000
  config.eval.chunk_size = 50
  config.eval.batch_size = 100
  config.eval.num_image_samples = 64
  return config
