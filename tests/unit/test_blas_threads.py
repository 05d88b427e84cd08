"""The server caps numpy's BLAS threads (RECSYS_SERVING_BLAS_THREADS), or leaves them.

Run in a fresh interpreter each: the cap is process-wide and would outlive the test."""

import subprocess
import sys

import pytest

CODE = """
from threadpoolctl import threadpool_info
from app.main import limit_blas
limit_blas({threads})
print(min(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"))
"""


def blas_threads_after(threads: int) -> int:
    done = subprocess.run(
        [sys.executable, "-c", CODE.format(threads=threads)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_the_server_caps_blas_at_the_setting() -> None:
    assert blas_threads_after(1) == 1


def test_zero_leaves_the_library_default() -> None:
    default = blas_threads_after(0)
    if default == 1:
        pytest.skip("one core: BLAS's default is already one thread")
    assert default > 1
