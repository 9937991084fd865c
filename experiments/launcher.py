"""The start of every absl launcher (`main`, `compare`, `compare_flows`)."""

from absl import app
from absl import logging


def prepare(argv) -> None:
  """Rejects positional arguments and sets up absl logging.

  Progress lines are logged at INFO; orbax's INFO lines (one per checkpoint
  read and write) are filtered out so that they do not drown them.

  Raises:
    app.UsageError: when `argv` has more than the program name.
  """
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(
      lambda record: "/orbax/" not in record.pathname)
