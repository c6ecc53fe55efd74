"""The script-strategy sandbox: every breach ends THAT run with a clear error, and the
parent (the worker) carries on and runs a good script right afterwards.

Jobs live in tests/engine/sandbox_jobs.py and run inside the child.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from apps.engine.sandbox import (
    SandboxError,
    SandboxLimits,
    SandboxResult,
    compile_strategy,
    load_main,
    run_sandboxed,
)
from apps.engine.sandbox.imports import ALLOWED_MODULES

JOBS = "tests.engine.sandbox_jobs"
LOOP = f"{JOBS}:loop_over_bars"
CLOSES = np.array([10.0, 11.0, 12.0, 13.0, 12.0, 11.0, 12.0, 13.0, 14.0, 13.0])

# Small limits; wall clocks are generous because CI machines (and this one) can be busy.
FAST = SandboxLimits(cpu_seconds=1, wall_seconds=30, memory_mb=256)

GOOD = """\
import statistics

def main(sdk, params):
    closes = sdk.close
    n = params["lookback"]
    if len(closes) <= n:
        return
    average = statistics.fmean(closes[-n - 1 : -1])
    if closes[-1] > average and sdk.position == 0:
        sdk.buy(1)
        print(f"buy at {closes[-1]} > {average:.2f}")
    elif closes[-1] < average and sdk.position > 0:
        sdk.sell(1)
        print("sell at", closes[-1])
"""


def run(source: str, limits: SandboxLimits = FAST, job: str = LOOP, **kw: object) -> SandboxResult:
    kw.setdefault("arrays", {"close": CLOSES})
    kw.setdefault("params", {"lookback": 3})
    return run_sandboxed(job, source, limits=limits, **kw)  # type: ignore[arg-type]


def assert_parent_carries_on() -> None:
    result = run(GOOD)
    assert result.error is None, result.error
    assert [c["side"] for c in result.value["calls"]] == ["buy", "sell", "buy"]


def expect_error(result: SandboxResult, kind: str, line: int | None = None) -> SandboxError:
    assert result.error is not None, f"expected a {kind} error, got {result.value!r}"
    assert result.error.kind == kind, result.error
    if line is not None:
        assert result.error.line == line, result.error
    assert result.error.message
    return result.error


# --------------------------------------------------------------------------- good runs


def test_good_script_trades_and_its_prints_come_back_as_the_log() -> None:
    result = run(GOOD)
    assert result.ok, result.error
    assert result.value["calls"] == [
        {"bar": 3, "side": "buy", "size": 1},
        {"bar": 5, "side": "sell", "size": 1},
        {"bar": 7, "side": "buy", "size": 1},
    ]
    assert result.value["bars"] == len(CLOSES)
    assert result.log.splitlines() == [
        "buy at 13.0 > 11.00",
        "sell at 11.0",
        "buy at 13.0 > 11.67",
    ]
    assert result.stats["spawned"] is True
    assert result.stats["uid"] != 0  # never root when it runs the script


def test_scripts_keep_state_in_their_own_classes_and_the_sdk_state_dict() -> None:
    source = """\
import math
from collections import deque

class Counter:
    def __init__(self):
        self.n = 0

counter = Counter()
window = deque(maxlen=3)

def main(sdk, params):
    counter.n = counter.n + 1
    window.append(sdk.close[-1])
    sdk.state["seen"] = counter.n
    if counter.n == len(params["expect"]):
        sdk.log(f"{counter.n} {list(window)} {math.sqrt(16)} {sdk.state['seen']}")
"""
    result = run(source, params={"expect": list(range(len(CLOSES)))})
    assert result.ok, result.error
    assert result.value["calls"] == [{"bar": 9, "log": "10 [13.0, 14.0, 13.0] 4.0 10"}]


def test_numpy_arrays_travel_both_ways_as_raw_buffers() -> None:
    ohlc = np.random.default_rng(1).random((5, 4))
    stamps = np.arange(5).astype("datetime64[s]")
    result = run(
        "def main(sdk, params):\n    pass\n",
        job=f"{JOBS}:echo_arrays",
        arrays={"ohlc": ohlc, "t": np.arange(5, dtype=np.int64), "stamps": stamps},
        data={"symbol": "BTC/USDT"},
    )
    assert result.ok, result.error
    np.testing.assert_array_equal(result.value["ohlc"], ohlc * 2)
    np.testing.assert_array_equal(result.value["t"], np.arange(5) * 2)
    np.testing.assert_array_equal(result.value["stamps"], stamps)
    assert result.value["data"] == {"symbol": "BTC/USDT"}


# --------------------------------------------------------------------------- CPU, wall clock


def test_an_infinite_loop_hits_the_cpu_limit_with_its_line() -> None:
    source = "def main(sdk, params):\n    x = 0\n    while True:\n        x = x + 1\n"
    started = time.monotonic()
    result = run(source)
    error = expect_error(result, "cpu")
    assert error.line in (3, 4)
    assert "CPU" in error.message
    assert time.monotonic() - started < FAST.wall_seconds
    assert_parent_carries_on()


def test_a_loop_that_swallows_the_cpu_signal_is_killed_by_the_hard_limit() -> None:
    source = """\
def main(sdk, params):
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass
"""
    result = run(source)
    error = expect_error(result, "cpu")
    assert result.stats["exit_status"] == -9  # SIGKILL at the hard RLIMIT_CPU
    assert "CPU" in error.message
    assert_parent_carries_on()


def test_wall_clock_limit_ends_a_run_with_the_line() -> None:
    limits = SandboxLimits(cpu_seconds=60, wall_seconds=1.5, memory_mb=256)
    result = run("def main(sdk, params):\n    while True:\n        pass\n", limits)
    error = expect_error(result, "timeout", line=2)
    assert "wall-clock" in error.message
    assert_parent_carries_on()


def test_the_parent_kills_a_child_that_ignores_the_wall_clock_alarm() -> None:
    limits = SandboxLimits(cpu_seconds=60, wall_seconds=1.0, memory_mb=256, kill_grace_seconds=1)
    source = """\
def main(sdk, params):
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass
"""
    started = time.monotonic()
    result = run(source, limits)
    error = expect_error(result, "timeout")
    assert error.line is None and "1 s" in error.message
    assert time.monotonic() - started < 10
    assert_parent_carries_on()


# --------------------------------------------------------------------------- memory


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("x = [0] * 10**10", 2),
        ("x = 'a' * 10**10", 2),
        ("x = []\n    while True:\n        x.append([len(x)] * 100000)", 4),
        ("x = ''\n    while True:\n        x = x + 'ab' * 1000000", 4),
    ],
    ids=["list-multiply", "str-multiply", "growing-list", "growing-string"],
)
def test_a_memory_bomb_hits_the_memory_limit(body: str, line: int) -> None:
    result = run(f"def main(sdk, params):\n    {body}\n")
    error = expect_error(result, "memory", line=line)
    assert "memory" in error.message
    assert result.stats["rlimit_as_mb"] <= result.stats["baseline_vm_mb"] + 256 + 1
    assert_parent_carries_on()


# --------------------------------------------------------------------------- imports and files


@pytest.mark.parametrize(
    ("source", "line", "fragment"),
    [
        ("import os\n\ndef main(sdk, params):\n    pass\n", 1, '"os"'),
        ("def main(sdk, params):\n    import socket\n", 2, '"socket"'),
        (
            "x = 1\nfrom subprocess import run\n\ndef main(sdk, params):\n    run(['id'])\n",
            2,
            '"subprocess"',
        ),
        ("def main(sdk, params):\n    m = __import__('os')\n", 2, '"__import__"'),
        ("import numpy as np\n\ndef main(sdk, params):\n    pass\n", 1, "indicators instead"),
        ("import os.path\n\ndef main(sdk, params):\n    pass\n", 1, '"os.path"'),
        ("from statistics import sys\n\ndef main(sdk, params):\n    pass\n", 1, '"sys"'),
        ("from . import x\n\ndef main(sdk, params):\n    pass\n", 1, "relative"),
        ("import random\n\ndef main(sdk, params):\n    pass\n", 1, "repeat exactly"),
        ("def main(sdk, params):\n    import time\n", 2, "no clock"),
    ],
    ids=[
        "os",
        "socket",
        "from-subprocess",
        "dunder-import",
        "numpy",
        "os.path",
        "statistics.sys",
        "relative",
        "random",
        "time",
    ],
)
def test_forbidden_imports_are_refused_naming_the_line(
    source: str, line: int, fragment: str
) -> None:
    with pytest.raises(SandboxError) as caught:
        compile_strategy(source)
    assert caught.value.kind == "forbidden"
    assert caught.value.line == line
    assert fragment in caught.value.message
    result = run(source)  # the runner gives the same verdict, without spawning a child
    assert result.error == caught.value
    assert result.stats == {"spawned": False}


def test_allowed_modules_work_and_hand_out_no_real_modules() -> None:
    source = """\
import math, statistics, itertools, functools, collections, datetime, decimal
from decimal import Decimal

def main(sdk, params):
    decimal.getcontext().prec = 10
    day = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(days=1)
    pairs = list(itertools.pairwise([1, 2, 4]))
    total = functools.reduce(lambda a, b: a + b, [1, 2, 3])
    sdk.log(f"{math.floor(2.5)} {statistics.median([3, 1, 2])} {pairs} {total} "
            f"{collections.Counter('aab')['a']} {day.isoformat()} {Decimal('0.1') * 3} "
            f"{day.strftime('%Y-%m-%d')} {Decimal(1) / 3}")
"""
    result = run(source, arrays={"close": CLOSES[:1]})
    assert result.ok, result.error
    assert result.value["calls"][0]["log"] == (
        "2 2 [(1, 2), (2, 4)] 6 2 2024-01-02T00:00:00+00:00 0.3 2024-01-02 0.3333333333"
    )
    # What `import statistics` gives: the allowlisted names only (the real module leaks sys).
    assert "sys" not in ALLOWED_MODULES["statistics"].public_names()
    assert "fmean" in ALLOWED_MODULES["statistics"].public_names()


def test_open_is_refused_and_nothing_is_read() -> None:
    source = "def main(sdk, params):\n    data = open('/etc/passwd').read()\n    sdk.log(data)\n"
    with pytest.raises(SandboxError) as caught:
        compile_strategy(source)
    assert caught.value.kind == "forbidden" and caught.value.line == 2
    assert '"open"' in caught.value.message and "file" in caught.value.message
    result = run(source)
    assert result.error is not None and result.value is None
    assert "root:" not in result.log


def test_even_trusted_code_in_the_child_cannot_open_files_sockets_or_fork() -> None:
    """Defence in depth: RLIMIT_NOFILE 0, RLIMIT_NPROC 0, uid nobody, a bare environment."""
    result = run("def main(sdk, params):\n    pass\n", job=f"{JOBS}:probe_child")
    assert result.ok, result.error
    probe = result.value
    for what in ("open_read", "open_write", "socket", "fork"):
        assert probe[what].startswith("refused"), (what, probe[what])
    assert probe["uid"] != 0
    assert not {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "HOME"} & set(probe["env"])


# --------------------------------------------------------------------------- escapes


COMPILE_TIME_ESCAPES = {
    "subclasses": ("().__class__.__bases__[0].__subclasses__()", '"__class__"'),
    "getattr-dunder": ("getattr((), '__class__')", '"__class__"'),
    "type-mro": ("type(1).__mro__", '"__mro__"'),
    "format-string": ("'{0.__class__}'.format(1)", "str.format"),
    "gi-frame": ("(i for i in []).gi_frame.f_globals", '"gi_frame"'),
    "f-globals": ("main.__globals__", '"__globals__"'),
    "builtins": ("__builtins__['open']", '"__builtins__"'),
    "eval": ("eval('1')", '"eval"'),
    "exec": ("exec('x = 1')", '"exec"'),
    "compile": ("compile('1', 'f', 'eval')", '"compile"'),
    "globals": ("globals()['x']", '"globals"'),
    "vars": ("vars()", '"vars"'),
    "lambda-dunder": ("(lambda: 0).__code__", '"__code__"'),
    "exception-traceback": ("ValueError().__traceback__", '"__traceback__"'),
}


@pytest.mark.parametrize("case", sorted(COMPILE_TIME_ESCAPES))
def test_escapes_are_refused_at_compile_time(case: str) -> None:
    expression, fragment = COMPILE_TIME_ESCAPES[case]
    source = f"def main(sdk, params):\n    x = 1\n    y = {expression}\n"
    with pytest.raises(SandboxError) as caught:
        compile_strategy(source)
    assert caught.value.kind == "forbidden", caught.value
    assert caught.value.line == 3
    assert fragment in "\n".join(caught.value.details)  # all refusals, in source order


RUNTIME_ESCAPES = {
    # Names built at runtime get past the compiler; the guards refuse them.
    "getattr-built-name": ("getattr((), '__cl' + 'ass__')", "private or internal"),
    "format-via-variable": ("s = '{0.__class__}'\n    y = s.format(1)", "str.format"),
    "format-via-str-type": ("y = str.format('{0.__class__}', 1)", "str.format"),
    "gi-frame-built-name": (
        "g = (i for i in [1])\n    y = getattr(g, 'gi_' + 'frame')",
        '"gi_frame"',
    ),
    "f-globals-via-getattr": ("y = getattr(main, 'f_' + 'globals', None)", '"f_globals"'),
    "hasattr-dunder": ("n = '__' + 'class__'\n    y = hasattr(1, n)", "private or internal"),
    "format-via-userstring": (
        "import collections\n    y = collections.UserString('{0.__class__}').format(1)",
        "str.format",
    ),
    "setattr-on-sdk": ("setattr(sdk, 'position', 1e9)", "read-only"),
    "write-sdk-attribute": ("sdk.position = 1e9", "read-only"),
    "datetime-now": ("import datetime\n    y = datetime.datetime.now()", "clock"),
    "module-write": ("import math\n    math.pi = 3", "read-only"),
}


@pytest.mark.parametrize("case", sorted(RUNTIME_ESCAPES))
def test_escapes_built_at_runtime_are_refused_by_the_guards(case: str) -> None:
    statement, fragment = RUNTIME_ESCAPES[case]
    source = f"def main(sdk, params):\n    {statement}\n"
    compile_strategy(source)  # the compiler cannot see these
    result = run(source, arrays={"close": CLOSES[:1]})
    error = expect_error(result, "forbidden")
    assert fragment in error.message
    assert error.line is not None and error.line >= 2


def test_runtime_refusals_end_the_run_and_the_parent_carries_on() -> None:
    result = run("def main(sdk, params):\n    y = getattr((), '__sub' + 'classes__')\n")
    expect_error(result, "forbidden", line=2)
    assert_parent_carries_on()


def test_the_child_recompiles_and_refuses_source_the_parent_never_saw() -> None:
    """The child never trusts the parent's compile: a job loading other source is refused."""
    result = run(
        "def main(sdk, params):\n    pass\n",
        job=f"{JOBS}:load_other_source",
        data={"source": "import os\ndef main(sdk, params):\n    pass\n"},
    )
    expect_error(result, "forbidden", line=1)


def test_an_unfinished_allowlisted_module_attribute_is_a_plain_runtime_error() -> None:
    result = run("import statistics\n\ndef main(sdk, params):\n    statistics.sys.exit()\n")
    error = expect_error(result, "runtime", line=4)
    assert "no attribute 'sys'" in error.message


# --------------------------------------------------------------------------- syntax, runtime


def test_a_syntax_error_names_its_line() -> None:
    source = "def main(sdk, params):\n    x = 1\n    if x >\n        pass\n"
    result = run(source)
    error = expect_error(result, "syntax", line=3)
    assert "invalid syntax" in error.message
    assert result.stats == {"spawned": False}


def test_a_script_without_main_is_refused() -> None:
    with pytest.raises(SandboxError) as caught:
        compile_strategy("def mian(sdk, params):\n    pass\n")
    assert caught.value.kind == "syntax" and "def main(sdk, params)" in caught.value.message
    with pytest.raises(SandboxError) as caught:
        compile_strategy("def main(sdk):\n    pass\n")
    assert caught.value.line == 1


def test_an_exception_in_main_is_a_runtime_error_with_the_script_line() -> None:
    source = """\
def ratio(a, b):
    return a / b

def main(sdk, params):
    print("about to divide")
    return ratio(1, 0)
"""
    result = run(source)
    error = expect_error(result, "runtime", line=2)
    assert error.message == "ZeroDivisionError: division by zero"
    assert error.details == ("line 6, in main", "line 2, in ratio")
    assert result.log == "about to divide\n"  # the log survives the error
    assert_parent_carries_on()


def test_an_error_in_the_module_body_is_a_runtime_error() -> None:
    result = run("x = {}['missing']\n\ndef main(sdk, params):\n    pass\n")
    error = expect_error(result, "runtime", line=1)
    assert "KeyError" in error.message


def test_deep_recursion_is_a_runtime_error_with_a_short_trace() -> None:
    result = run("def f(n):\n    return f(n + 1)\n\ndef main(sdk, params):\n    f(0)\n")
    error = expect_error(result, "runtime", line=2)
    assert "RecursionError" in error.message
    assert len(error.details) <= 10


# --------------------------------------------------------------------------- crashes


@pytest.mark.parametrize("signame", ["SIGSEGV", "SIGKILL", "SIGABRT"])
def test_a_child_killed_by_a_signal_is_a_crash(signame: str) -> None:
    result = run(
        "def main(sdk, params):\n    pass\n",
        job=f"{JOBS}:die_by_signal",
        data={"signal": signame},
    )
    error = expect_error(result, "crash")
    assert signame in error.message
    assert_parent_carries_on()


def test_concurrent_runs_are_independent() -> None:
    """A worker thread's breach ends only its own run."""
    from concurrent.futures import ThreadPoolExecutor

    loop = "def main(sdk, params):\n    while True:\n        pass\n"
    bomb = "def main(sdk, params):\n    x = [0] * 10**10\n"
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(run, source) for source in (loop, GOOD, bomb, GOOD)]
        results = [f.result() for f in futures]
    assert [r.error.kind if r.error else "ok" for r in results] == ["cpu", "ok", "memory", "ok"]
    assert results[1].value == results[3].value


def test_a_result_that_is_not_json_is_a_crash_not_a_hang() -> None:
    result = run("def main(sdk, params):\n    pass\n", job=f"{JOBS}:return_unserialisable")
    expect_error(result, "crash")


def test_an_unknown_job_is_a_crash() -> None:
    result = run("def main(sdk, params):\n    pass\n", job=f"{JOBS}:no_such_job")
    error = expect_error(result, "crash")
    assert "no_such_job" in error.message


def test_trusted_pandas_work_after_the_lock_down_needs_a_preload() -> None:
    """Jobs may use numpy/pandas after the lock-down, but imports must happen before it."""
    source = "def main(sdk, params):\n    pass\n"
    close = np.arange(10.0)
    job = f"{JOBS}:pandas_after_lockdown"
    result = run(source, job=job, arrays={"close": close}, preload=["pandas"])
    assert result.ok, result.error
    np.testing.assert_allclose(result.value["sma"][-3:], [6.0, 7.0, 8.0])
    late = run(source, job=job, arrays={"close": close})
    error = expect_error(late, "crash")
    assert "preload" in error.message


# --------------------------------------------------------------------------- in-process API


def test_there_is_no_in_process_mode_for_user_scripts() -> None:
    with pytest.raises(RuntimeError, match="only inside the sandbox child"):
        load_main("def main(sdk, params):\n    pass\n")


def test_load_main_in_the_child_returns_main_with_its_print_log() -> None:
    result = run("def main(sdk, params):\n    pass\n", job=f"{JOBS}:exercise_load_main")
    assert result.ok, result.error
    assert result.value["out"] == [42, 2]
    assert result.value["log"] == "bar 1\nbar 2\n"
    assert result.value["refused"].startswith("SandboxViolation: print(file=...)")


# --------------------------------------------------------------------------- measurements


def test_measure_startup_and_per_bar_overhead(capsys: pytest.CaptureFixture[str]) -> None:
    """Child start-up cost and the per-bar cost of calling main(sdk, params) 10,000 times."""
    source = """\
def main(sdk, params):
    if sdk.price > params["level"] and sdk.bar % 100 == 0:
        sdk.buy()
"""
    closes = np.linspace(100, 200, 10_000)
    started = time.perf_counter()
    empty = run("def main(sdk, params):\n    pass\n", job=f"{JOBS}:echo_arrays")
    startup = time.perf_counter() - started
    result = run(
        source, job=f"{JOBS}:time_main_calls", arrays={"close": closes}, params={"level": 150.0}
    )
    assert empty.ok and result.ok, (empty.error, result.error)
    per_bar_us = result.value["seconds"] / result.value["bars"] * 1e6
    per_bar_cpu_us = result.value["cpu_seconds"] / result.value["bars"] * 1e6
    assert result.value["bars"] == 10_000 and result.value["buys"] == 50
    with capsys.disabled():
        print(
            f"\nsandbox: start-up {startup * 1000:.0f} ms wall "
            f"(child CPU {empty.stats['child_cpu_s'] * 1000:.0f} ms); "
            f"main() per bar {per_bar_us:.2f} us wall, {per_bar_cpu_us:.2f} us CPU "
            "over 10,000 bars; "
            f"baseline VM {empty.stats['baseline_vm_mb']} MB"
        )
    assert per_bar_us < 200  # generous: a busy CI box; ~1-3 us on an idle one
