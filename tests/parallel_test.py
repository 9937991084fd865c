"""Tests of data parallelism over a device mesh (training/parallel.py).

Several CPU devices exist only if XLA is told so before JAX starts, so the
multi-device checks run in a subprocess with
`XLA_FLAGS=--xla_force_host_platform_device_count=4`.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from configs import test as test_config
from discrete_vi import training
from discrete_vi.training import parallel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_DEVICES = 4

# Trains configs/test.py on 4 devices and on 1 (same seed, same process),
# recording the shardings of the train-step inputs the loop passes.
TRAIN_SCRIPT = textwrap.dedent("""
    import json, tempfile
    import jax, numpy as np
    from configs import test as test_config
    from discrete_vi import training
    from discrete_vi.training import parallel

    seen, final = [], {}
    jit_train_steps = parallel.jit_train_steps

    def recording_jit(train_steps, mesh):
      jitted = jit_train_steps(train_steps, mesh)
      def call(state, xs):
        seen.append({
            "xs_devices": len(xs.sharding.device_set),
            "xs_spec": list(xs.sharding.spec),
            "xs_shard_rows": xs.addressable_shards[0].data.shape[1],
            "params_replicated": all(
                leaf.sharding.is_fully_replicated and
                len(leaf.sharding.device_set) == len(xs.sharding.device_set)
                for leaf in jax.tree_util.tree_leaves(state.params))})
        state, metrics = jitted(state, xs)
        final["state"] = state
        return state, metrics
      return call
    parallel.jit_train_steps = recording_jit

    def run(data_parallel):
      config = test_config.get_config("reinforce")
      config.estimator.baseline = "moving_average"
      config.train.num_steps = 4
      config.train.data_parallel = data_parallel
      config.eval.batch_size = 500  # divisible by 4: sharded evaluation
      config.eval.num_image_samples = 0
      results = training.train_and_evaluate(config, tempfile.mkdtemp())
      state = final["state"]
      leaves = jax.tree_util.tree_leaves((state.params,
                                          state.model_state))
      return results, [np.asarray(leaf).tolist() for leaf in leaves]

    multi, multi_leaves = run(True)
    single, single_leaves = run(False)
    print(json.dumps({"devices": len(jax.devices()), "multi": multi,
                      "single": single, "multi_leaves": multi_leaves,
                      "single_leaves": single_leaves, "seen": seen}))
""")

VALIDATE_SCRIPT = textwrap.dedent("""
    import json
    from configs import test as test_config
    from discrete_vi import training
    config = test_config.get_config("reinforce")
    config.train.batch_size = 10
    try:
      training.validate_config(config)
      message = None
    except ValueError as error:
      message = str(error)
    config.train.data_parallel = False  # one device: any batch size
    training.validate_config(config)
    print(json.dumps({"message": message}))
""")


def run_with_devices(script: str) -> dict:
  """Runs `script` with NUM_DEVICES CPU devices; its last line is JSON."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT,
             XLA_FLAGS=" ".join(filter(None, (
                 os.environ.get("XLA_FLAGS"),
                 f"--xla_force_host_platform_device_count={NUM_DEVICES}"))))
  done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  return json.loads(done.stdout.strip().splitlines()[-1])


def test_four_devices_match_one_device_and_shard_the_batch():
  import numpy as np  # pylint: disable=g-import-not-at-top
  report = run_with_devices(TRAIN_SCRIPT)
  assert report["devices"] == NUM_DEVICES
  batch = test_config.get_config().train.batch_size
  multi_calls = report["seen"][:2]  # 4 steps, 2 per jit call, per run
  single_calls = report["seen"][2:]
  for seen in multi_calls:
    assert seen == {"xs_devices": NUM_DEVICES, "xs_spec": [None, "data"],
                    "xs_shard_rows": batch // NUM_DEVICES,
                    "params_replicated": True}
  for seen in single_calls:
    assert seen["xs_devices"] == 1 and seen["xs_shard_rows"] == batch
  for key in ("test_log_likelihood", "valid_log_likelihood",
              "train_objective"):
    np.testing.assert_allclose(report["multi"][key], report["single"][key],
                               rtol=1e-4, err_msg=key)
  assert report["multi"]["num_steps"] == report["single"]["num_steps"] == 4
  for a, b in zip(report["multi_leaves"], report["single_leaves"]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_batch_size_not_divisible_by_devices_is_named():
  report = run_with_devices(VALIDATE_SCRIPT)
  assert report["message"] is not None
  assert "config.train.batch_size=10" in report["message"]
  assert f"{NUM_DEVICES} devices" in report["message"]


def test_data_parallel_must_be_bool():
  config = test_config.get_config("reinforce").to_dict()
  config["train"]["data_parallel"] = "yes"
  with pytest.raises(ValueError, match="config.train.data_parallel"):
    training.validate_config(config)


def test_one_device_mesh_is_a_no_op_placement():
  mesh = parallel.make_mesh(data_parallel=False)
  assert mesh.axis_names == (parallel.DATA_AXIS,) and mesh.devices.size == 1
  x = parallel.shard_batch([[1.0, 2.0], [3.0, 4.0]], mesh)
  assert x.sharding.is_fully_replicated and x.shape == (2, 2)
