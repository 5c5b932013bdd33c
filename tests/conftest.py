import os

import pytest

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False, help="run slow tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs():
    """Drop every module's compiled programs after it. One pytest process compiles hundreds of
    XLA programs; keeping them all exhausted the process's memory maps (LLVM could not map a
    code section: a segfault inside the compilation cache's write, late in the suite)."""
    yield
    import jax

    from cpnjax.train import run

    run.compiled.cache_clear()
    run.score_baseline.cache_clear()
    jax.clear_caches()
    if os.environ.get("CPNJAX_REPORT_MAPS"):
        with open("/proc/self/maps") as f:
            print(f"\nmemory maps after module: {sum(1 for _ in f)}")
