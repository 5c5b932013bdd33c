"""Where a simulator step's time goes: observe and step apart, and a step's parts.

Each row is a jitted, vmapped `lax.scan` over tasks that runs only that part (its outputs all
used, so XLA drops nothing): arrive; observe (every field read, probes with noise); step with a
fixed action (candidate 0, ECMP); the whole task-step with Base1 and with greedy-joint.

With `--lines PART` one call of that part is traced (`jax.profiler`) and the time of each XLA
kernel is charged to the innermost line of the package that made it (the compiled HLO's stack
frames), with the kind of operation: where inside a step the time goes.

    python experiments/profile_sim.py --topology abilene --envs 4096 --out results/profile_sim.md
    python experiments/profile_sim.py --lines "base1 task-step" --out results/profile_sim_lines.md
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import gzip
import json
import re
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from cpnjax.io import atomic_text, package_versions
from cpnjax.policies import get_policy
from cpnjax.scenario import ScenarioConfig, make_scenario
from cpnjax.sim import (
    Action,
    SimConfig,
    arrive,
    candidates,
    make_params,
    observe,
    permuted_tasks,
    reset,
    step,
)


def tree_sum(tree) -> jax.Array:
    return sum(jnp.sum(jnp.asarray(x, jnp.float32)) for x in jax.tree.leaves(tree))


def parts(config: SimConfig) -> dict:
    """name -> body(params, state, task) -> (state, () output)."""

    def only_arrive(p, s, t):
        s = arrive(s, t)
        return s, s.time_s

    def only_observe(p, s, t):
        s = arrive(s, t)
        return s.replace(key=jax.random.split(s.key)[0]), tree_sum(observe(p, s, t, config))

    def only_step(p, s, t):
        s = arrive(s, t)
        mask = candidates(p, t).path_mask[0]
        action = Action(node_slot=jnp.int32(0), split=mask / mask.sum())
        s, info = step(p, s, t, action, config)
        return s, info.response_s

    def with_policy(name):
        policy = get_policy(name)

        def body(p, s, t):
            s = arrive(s, t)
            s, info = step(p, s, t, policy(observe(p, s, t, config)), config)
            return s, info.response_s

        return body

    return {
        "arrive": only_arrive,
        "observe": only_observe,
        "step (fixed action)": only_step,
        "base1 task-step": with_policy("base1"),
        "greedy task-step": with_policy("greedy"),
    }


def compile_part(body, params, keys, tasks):
    """(compile_s, the compiled vmapped scan of `body` over (params, keys, tasks))."""

    def run(params, keys, tasks):
        def one(key, tasks):
            return jax.lax.scan(lambda s, t: body(params, s, t), reset(params, key), tasks)[1]

        return jax.vmap(one)(keys, tasks)

    start = time.perf_counter()
    compiled = jax.jit(run).lower(params, keys, tasks).compile()
    return time.perf_counter() - start, compiled


def time_part(body, params, keys, tasks, repeats: int) -> tuple[float, float]:
    """(compile_s, best seconds per call) of the vmapped scan of `body`."""
    compile_s, compiled = compile_part(body, params, keys, tasks)
    jax.block_until_ready(compiled(params, keys, tasks))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(params, keys, tasks))
        best = min(best, time.perf_counter() - start)
    return compile_s, best


MOVES = {"gather", "scatter", "scatter-max", "dynamic_slice", "dynamic_update_slice", "transpose",
         "concatenate", "copy", "stack", "squeeze", "reshape", "broadcast_in_dim"}  # fmt: skip
LOOPS = {"while", "closed_call", "cond"}


def kind_class(kind: str) -> str:
    """The class of a kernel, by the operation at its root: a fused kernel also does the
    arithmetic fused into it, so "data movement" is an upper bound."""
    return "data movement" if kind in MOVES else "loop control" if kind in LOOPS else "arithmetic"


def kernel_times_us(compiled, args) -> dict[str, float]:
    """XLA kernel name -> microseconds in one traced call of `compiled(*args)` (summed over
    its launches; the runtime's own spans are left out)."""
    jax.block_until_ready(compiled(*args))
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir):
            jax.block_until_ready(compiled(*args))
        (path,) = Path(trace_dir).rglob("*.trace.json.gz")
        events = json.loads(gzip.decompress(path.read_bytes()))["traceEvents"]
    times = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and not e["name"].startswith(("$", "Thunk")):
            times[e["name"]] += e["dur"]
    return dict(times)


def _hlo_table(hlo: str, name: str, pattern: str) -> dict[int, tuple[str, ...]]:
    start = hlo.index("\n" + name + "\n") + len(name) + 2
    table = {}
    for line in hlo[start:].split("\n"):
        match = re.match(pattern, line)
        if match is None:
            break
        table[int(match.group(1))] = match.groups()[1:]
    return table


def kernel_sources(hlo: str) -> dict[str, tuple[str, str]]:
    """XLA kernel name -> (innermost package line "file.py:N function", kind of operation),
    from the compiled HLO text's op metadata and stack-frame tables."""
    files = _hlo_table(hlo, "FileNames", r'(\d+) "(.*)"')
    funcs = _hlo_table(hlo, "FunctionNames", r'(\d+) "(.*)"')
    locs = _hlo_table(
        hlo, "FileLocations", r"(\d+) \{file_name_id=(\d+) function_name_id=(\d+) line=(\d+)"
    )
    frames = _hlo_table(hlo, "StackFrames", r"(\d+) \{file_location_id=(\d+) parent_frame_id=(\d+)")

    def innermost(frame: int) -> str:
        while frame in frames:
            loc, parent = (int(x) for x in frames[frame])
            file, func, line = locs[loc]
            path = files[int(file)][0]
            if "/cpnjax/" in path and not path.endswith("lanes.py"):
                name = funcs[int(func)][0].replace(".<locals>", "")
                return f"{path.split('/cpnjax/')[-1]}:{line} {name}"
            if int(parent) == frame:
                break
            frame = int(parent)
        return "(outside the package)"

    sources = {}
    pattern = r'^\s*(?:ROOT )?%(\S+) = .*?metadata=\{op_name="([^"]*)" stack_frame_id=(\d+)'
    for match in re.finditer(pattern, hlo, re.M):
        kernel, op_name, frame = match.groups()
        sources.setdefault(kernel, (innermost(int(frame)), op_name.rsplit("/", 1)[-1]))
    return sources


def line_table(times_us: dict[str, float], sources, num_steps: int, top: int) -> list[str]:
    """Markdown: kernel time per source line (ms per step, share), the main kinds of operation,
    and the split into data movement, loop control and arithmetic."""
    by_line, by_class = collections.Counter(), collections.Counter()
    kinds = collections.defaultdict(collections.Counter)
    for kernel, us in times_us.items():
        line, kind = sources.get(kernel, ("(no metadata)", "?"))
        by_line[line] += us
        kinds[line][kind] += us
        by_class[kind_class(kind)] += us
    total = sum(times_us.values())
    ms = lambda us: f"{us / 1e3 / num_steps:.2f}"  # noqa: E731
    share = lambda us: f"{100 * us / total:.1f}%"  # noqa: E731
    lines = ["| source line | ms per step | share | kinds (ms per step) |", "|---|---|---|---|"]
    for line, us in by_line.most_common(top):
        main = ", ".join(f"{k} {ms(v)}" for k, v in kinds[line].most_common(3))
        lines.append(f"| `{line}` | {ms(us)} | {share(us)} | {main} |")
    rest = total - sum(us for _, us in by_line.most_common(top))
    lines += [f"| {len(by_line) - top} other lines | {ms(rest)} | {share(rest)} | |", ""]
    lines += ["| class | ms per step | share |", "|---|---|---|"]
    lines += [f"| {c} | {ms(us)} | {share(us)} |" for c, us in by_class.most_common()]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", default="abilene")
    parser.add_argument("--envs", type=int, default=4096)
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--coupled", action="store_true", help="SimConfig(coupled_chunks=True)")
    parser.add_argument("--lines", metavar="PART", help="trace PART and time it by source line")
    parser.add_argument("--top", type=int, default=25, help="source lines listed by --lines")
    parser.add_argument("--out", type=Path, default=Path("results/profile_sim.md"))
    args = parser.parse_args()
    config = SimConfig(coupled_chunks=args.coupled)
    table = parts(config)
    if args.lines is not None and args.lines not in table:
        parser.error(f"--lines: no part {args.lines!r}; the parts are {sorted(table)}")
    cfg = dataclasses.replace(
        ScenarioConfig.default(), topology=args.topology, num_tasks=args.tasks
    )
    scenario = make_scenario(cfg, seed=0)
    params = make_params(scenario)
    tasks = permuted_tasks(scenario.tasks, args.envs, seed=1)
    keys = jax.random.split(jax.random.key(0), args.envs)
    device = jax.devices()[0]
    title = (
        f"# profile_sim: {args.topology}, {args.envs} environments ({device.platform}: "
        f"{device.device_kind}){', coupled chunks' if args.coupled else ''}"
    )
    if args.lines is None:
        rows = []
        for name, body in table.items():
            compile_s, call_s = time_part(body, params, keys, tasks, args.repeats)
            per_step_ms = 1e3 * call_s / args.tasks
            rows.append((name, per_step_ms, 1e6 * call_s / (args.tasks * args.envs), compile_s))
            print(f"{name:>20}: {per_step_ms:8.2f} ms per step of {args.envs} envs", flush=True)
        body = [
            "| part | ms per step (all environments) | us per task-step | compile (s) |",
            "|---|---|---|---|",
            *(f"| {n} | {ms:.2f} | {us:.2f} | {c:.1f} |" for n, ms, us, c in rows),
        ]
    else:
        _, compiled = compile_part(table[args.lines], params, keys, tasks)
        call = (params, keys, tasks)
        start = time.perf_counter()
        times = kernel_times_us(compiled, call)
        print(f"traced {args.lines} in {time.perf_counter() - start:.1f} s", flush=True)
        body = [
            f"{args.lines}: XLA kernel time of one traced call, charged to the innermost line of "
            "the package that made each kernel (lanes.py helpers charged to their caller). "
            "Kernels of a step can run side by side on the two cores, so the total is kernel "
            "time, not wall time. A kernel's kind is the operation at its root (a fused kernel "
            "also does the arithmetic fused into it).",
            "",
            *line_table(times, kernel_sources(compiled.as_text()), args.tasks, args.top),
        ]
    lines = [
        title,
        "",
        *body,
        "",
        "config: " + json.dumps(vars(args), default=str),
        "",
        "versions: " + json.dumps(package_versions()),
    ]
    atomic_text(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
