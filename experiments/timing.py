"""Wall-clock timing for the benchmarks (reports, never timed tests)."""

import time

import jax

from discrete_vi.training import steps as steps_lib


def time_interleaved(calls, repeats: int = 9, per_repeat: int = 5
                     ) -> list[float]:
  """Best-of-repeats seconds per call of each `(fn, carry, args)`.

  Each `fn(carry, *args)` returns `(next carry, outputs)`; the carry is
  threaded from call to call and never reused, as jitted functions that
  donate it require. The functions are timed round-robin, so load from
  other processes on a shared machine hits all of them alike and their
  ratios stay meaningful.
  """
  carries = [steps_lib.own_buffers(carry) for _, carry, _ in calls]

  def call(i):
    fn, _, args = calls[i]
    carries[i], out = fn(carries[i], *args)
    return carries[i], out
  for i in range(len(calls)):
    jax.block_until_ready(call(i))  # compile
  best = [float("inf")] * len(calls)
  for _ in range(repeats):
    for i in range(len(calls)):
      start = time.perf_counter()
      for _ in range(per_repeat):
        out = call(i)
      jax.block_until_ready(out)
      best[i] = min(best[i], (time.perf_counter() - start) / per_repeat)
  return best
