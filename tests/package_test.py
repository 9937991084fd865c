"""The package as an estimator user imports it: light, and nothing missing."""

import glob
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Loaded by the data, training and experiment layers, never by estimators.
HEAVY = ("tensorflow", "tensorflow_datasets", "orbax", "matplotlib",
         "tensorboardX", "mlxtend", "ml_collections")


def _modules_after(code: str) -> list[str]:
  """Top-level modules and discrete_vi subpackages loaded by `code`."""
  script = (f"{code}\nimport json, sys\n"
            "print(json.dumps(sorted(sys.modules)))")
  done = subprocess.run([sys.executable, "-c", script], cwd=ROOT,
                        capture_output=True, text=True, check=True,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"))
  return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_estimators_loads_no_data_or_experiment_layer():
  loaded = _modules_after("import discrete_vi\n"
                          "from discrete_vi import estimators")
  heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
  assert not heavy, heavy
  layers = {m.split(".")[1] for m in loaded
            if m.startswith("discrete_vi.") and m.count(".") >= 1}
  assert not layers & {"data", "models", "training", "objectives"}, layers


def test_lazy_subpackages_load_on_first_use():
  loaded = _modules_after("import discrete_vi\n"
                          "assert 'mnist5k' in discrete_vi.data.DATASETS\n"
                          "assert discrete_vi.training.train_and_evaluate\n"
                          "assert discrete_vi.models.registry.MODELS")
  assert "discrete_vi.data" in loaded and "discrete_vi.training" in loaded


def _readme_python_blocks() -> list[str]:
  with open(os.path.join(ROOT, "README.md")) as fh:
    text = fh.read()
  blocks, inside, current = [], False, []
  for line in text.splitlines():
    if line.strip() == "```python":
      inside, current = True, []
    elif inside and line.strip() == "```":
      inside = False
      blocks.append("\n".join(current))
    elif inside:
      current.append(line)
  return blocks


def test_readme_python_examples_run():
  blocks = _readme_python_blocks()
  assert len(blocks) >= 2
  for block in blocks:
    if "estimator(key, logits, f" in block:  # the signature, not a program
      continue
    exec(compile(block, "README.md", "exec"), {})  # pylint: disable=exec-used


def test_relative_links_of_the_guides_resolve():
  """Every relative link of README.md, docs/ and benchmark_results/
  README.md names a file of the tree (links are relative to their file)."""
  files = ["README.md", os.path.join("benchmark_results", "README.md"),
           *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]
  broken = []
  for name in files:
    path = os.path.join(ROOT, name)
    with open(path) as fh:
      text = fh.read()
    for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
      if "://" in link:
        continue
      if not os.path.exists(os.path.join(os.path.dirname(path), link)):
        broken.append((name, link))
  assert len(files) >= 7 and not broken, broken
