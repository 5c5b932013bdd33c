"""The replay plan is built on the host, without NS-3: decisions are checked against the scenario
before any NS-3 run, and the plan carries exactly the scenario's traffic."""

import numpy as np
import pytest

from cpnjax.evaluate import run_policy
from cpnjax.scenario import make_scenario
from ns3_validation.cli import main
from ns3_validation.fidelity import matrix_sim_config, validation_config
from ns3_validation.plan import (
    PPP_HEADER_BYTES,
    Decisions,
    Ns3Settings,
    ReplayInputError,
    build_plan,
    path_bytes,
)


@pytest.fixture(scope="module")
def case():
    scenario = make_scenario(validation_config("abilene", "low", 12), seed=2)
    return scenario, Decisions.of(run_policy(scenario, "base1"))


def test_plan_carries_the_scenario_traffic(case):
    scenario, decisions = case
    plan = build_plan(scenario, decisions)
    tasks = plan["tasks"]
    assert len(tasks) == 12
    for t, size in zip(tasks, scenario.tasks.size_bytes, strict=True):
        assert sum(t["bytes"]) == round(float(size))
    # Background packets per second x wire bits = the demand each node sends.
    wire_bits = 8 * (Ns3Settings().background_packet_bytes + PPP_HEADER_BYTES)
    sent = {b["node"]: b["packets_per_s"] * wire_bits for b in plan["background"]}
    demand = scenario.background_demand_bps.sum(1)
    for node, bps in sent.items():
        assert bps == pytest.approx(demand[node], rel=1e-9)
    # Every task's data and probe paths are pinned.
    pinned = {(s, d, f) for s, d, f, _ in plan["pins"]}
    for t in tasks:
        for k, b in enumerate(t["bytes"]):
            assert b == 0 or (t["src"], t["node"], k) in pinned
        for m, k, _ in t["probes"]:
            assert (t["src"], m, k) in pinned


def test_path_bytes_are_exact_integers_on_the_split():
    assert path_bytes(1000.4, np.array([0.5, 0.25, 0.25])) == [500, 250, 250]
    assert sum(path_bytes(123457, np.array([1 / 3, 1 / 3, 1 / 3]))) == 123457
    assert path_bytes(10, np.array([0.0, 1.0, 0.0])) == [0, 10, 0]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s, k: (s[:-1], k[:-1]), "decisions must be"),
        (lambda s, k: (s, k * 1.5), "not on the simplex"),
        (lambda s, k: (s, np.where(k == k, np.nan, k)), "not finite"),
        (lambda s, k: (s + 99, k), "integers in"),
    ],
)
def test_bad_decisions_are_one_clear_error(case, mutate, message):
    scenario, decisions = case
    slot, split = mutate(decisions.node_slot.copy(), decisions.split.copy())
    with pytest.raises(ReplayInputError, match=message):
        build_plan(scenario, Decisions(slot, split))


def test_decisions_on_a_missing_path_are_rejected():
    # Seed 5 puts an access point on Abilene's degree-1 node 0: some candidates have < 3 paths.
    from ns3_validation.plan import task_classes

    scenario = make_scenario(validation_config("abilene", "low", 12), seed=5)
    decisions = Decisions.of(run_policy(scenario, "base1"))
    cand = scenario.candidates
    classes = task_classes(scenario)
    mask = cand.path_mask[scenario.tasks.access_point, classes]  # (T, N, K)
    t, n, k = np.argwhere(~mask & cand.node_mask[scenario.tasks.access_point, classes][..., None])[
        0
    ]
    slot, split = decisions.node_slot.copy(), decisions.split.copy()
    slot[t], split[t] = n, 0.0
    split[t, k] = 1.0
    with pytest.raises(ReplayInputError, match="not on the simplex"):
        build_plan(scenario, Decisions(slot, split))


def test_cli_bad_input_is_one_line_exit_2(capsys, tmp_path):
    assert main(["fidelity", "--topology", "nowhere", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cpnjax-ns3: error:")
    assert main(["policies", "--policies", "base1,bogus", "--out", str(tmp_path)]) == 2
    assert "bogus" in capsys.readouterr().err


def test_a_stored_matrix_rebuilds_the_switches_it_was_made_with():
    import json
    from pathlib import Path

    from cpnjax.sim import SimConfig

    results = Path(__file__).resolve().parents[1] / "results"
    made = {name: json.loads((results / name / "config.json").read_text()) for name in (
        "ns3_fidelity", "ns3_fidelity_coupled", "ns3_fidelity_noise")}  # fmt: skip
    assert matrix_sim_config(made["ns3_fidelity"]) == SimConfig()
    assert matrix_sim_config(made["ns3_fidelity_coupled"]) == SimConfig(coupled_chunks=True)
    assert matrix_sim_config(made["ns3_fidelity_noise"]) == SimConfig(background_noise=True)
