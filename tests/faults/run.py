"""A Jepsen-style fault suite for patchfarm on the compose deployment (deploy/compose).

For each seed: clients submit copy jobs with their own request ids (every call recorded in a
history: invoke, then ok / unknown) and the quickstart's campaign is submitted again under
another name, while a seeded schedule of nemeses runs — partitions (a minority, the leader
isolated, a bridge), kill -9 of the leader and of an agent, an agent paused past its lease while
its job stalls (it wakes holding an expired lease), a restart of every node, and a coordinator's
data directory lost (removed from the membership, emptied, re-joined). After the last
heal the checker reads every job and the coordinators' audit of accepted completions.

Usage: run.py --bin DIR --report DIR [--seeds 1,2,3] [--broken]
  --report DIR   the undisturbed quickstart run's output (report.json, campaign.yaml)
  --broken       the farm runs with fencing off: the run passes only if the checker catches it
"""

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request

from checker import Op, check
from nemesis import AGENTS, COORDINATORS, Deployment

HERE = os.path.dirname(os.path.abspath(__file__))
COMPOSE_FILE = os.path.join(HERE, "../../deploy/compose/docker-compose.yml")
REJOIN_FILE = os.path.join(HERE, "rejoin.yml")
REFUSALS = ("InvalidArgument", "NotFound", "AlreadyExists", "PermissionDenied", "FailedPrecondition")


class Farm:
    """The patchfarm CLI against the deployment's published ports."""

    def __init__(self, binary, registry):
        self.binary = binary
        self.registry = registry

    def run(self, *args, timeout=30):
        return subprocess.run([self.binary, *args], capture_output=True, text=True,
                              timeout=timeout)

    def json(self, *args, timeout=60):
        done = self.run(*args, "--json", timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"patchfarm {' '.join(args)}: {done.stderr.strip()}")
        return json.loads(done.stdout)

    def leader(self):
        try:
            status = self.json("cluster", "status", timeout=15)
        except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError):
            return None
        healthy = all(n.get("healthy") for n in status["nodes"])
        return status.get("leader") if healthy else None

    def jobs(self):
        return self.json("jobs", "list")


class Clients:
    """Threads submitting copy jobs one after another, each call in the history."""

    def __init__(self, farm, prefix, threads=2):
        self.farm, self.prefix = farm, prefix
        self.history, self.lock = [], threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.loop, args=(t,), daemon=True)
                        for t in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()

    def loop(self, thread):
        n = 0
        while not self.stop.is_set():
            n += 1
            op = Op(request_id=f"{self.prefix}{thread}-{n}", invoked=time.time())
            with self.lock:
                self.history.append(op)
            source = f"{self.farm.registry}/busybox:1"
            target = f"{self.farm.registry}/faults/{self.prefix.rstrip('-')}:{thread}-{n}"
            try:
                done = self.farm.run("copy", source, target, "--request-id", op.request_id,
                                     "--json", timeout=20)
                if done.returncode == 0:
                    op.kind, op.job = "ok", json.loads(done.stdout)["id"]
                else:
                    # A refusal names its gRPC code: the farm answered and did nothing. Anything
                    # else (no coordinator answered in time) may or may not have happened.
                    op.error = done.stderr.strip()[-300:]
                    op.kind = "fail" if any(f": {code})" in op.error for code in REFUSALS) else "unknown"
            except subprocess.TimeoutExpired:
                op.kind, op.error = "unknown", "timed out"
            op.completed = time.time()
            time.sleep(0.2)


def readyz(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as answer:
            return answer.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def wait_for(what, predicate, deadline):
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise RuntimeError(f"{what}: not within {deadline} s")


class Schedule:
    """One seed's nemeses, in the order the seed gives, with durations from it."""

    KINDS = ["minority", "isolate-leader", "bridge", "kill-leader", "kill-agent",
             "pause-agent-past-lease", "restart-all", "lose-data-dir"]

    def __init__(self, seed, deployment, farm, lease_ms, log):
        self.rng = random.Random(seed)
        self.kinds = list(self.KINDS)
        self.rng.shuffle(self.kinds)
        self.dep, self.farm, self.lease_ms, self.log = deployment, farm, lease_ms, log
        self.recoveries, self.notes = [], []

    def hold(self):
        time.sleep(self.rng.uniform(3.0, 6.0))

    def metrics_port(self, coordinator):
        return 19100 + int(coordinator.rsplit("-", 1)[1])

    def split_agents(self, sides):
        groups = [list(side) for side in sides]
        for agent in AGENTS:
            groups[self.rng.randrange(len(groups))].append(agent)
        return groups

    def run_step(self, kind):
        leader = wait_for("a leader", self.farm.leader, 60)
        alone = None
        if kind == "minority":
            alone = self.rng.choice(COORDINATORS)
        elif kind == "isolate-leader":
            alone = f"coordinator-{leader}"
        if alone:
            rest = [c for c in COORDINATORS if c != alone]
            self.dep.partition(*self.split_agents([[alone], rest]))
            port = self.metrics_port(alone)
            status = wait_for(f"/readyz 503 on {alone}", lambda: readyz(port) == 503 and 503, 30)
            self.notes.append(f"{kind}: {alone} cut off, its /readyz said {status}")
            self.hold()
        elif kind == "bridge":
            a, b, c = self.rng.sample(COORDINATORS, 3)
            self.dep.cut(a, c)  # b sees both sides: the bridge
            self.notes.append(f"bridge: {a} | {b} | {c}")
            self.hold()
        elif kind == "kill-leader":
            self.dep.kill(f"coordinator-{leader}")
            self.hold()
        elif kind == "kill-agent":
            held = self.leased_agents()
            agent = self.rng.choice(sorted(held) or AGENTS)
            self.dep.kill(agent)
            self.notes.append(f"kill-agent: {agent} ({'holding a lease' if held else 'idle'})")
            self.hold()
        elif kind == "pause-agent-past-lease":
            self.pause_past_lease()
        elif kind == "restart-all":
            self.dep.restart(COORDINATORS + AGENTS)
        elif kind == "lose-data-dir":
            self.lose_data_dir()
        self.dep.heal()
        healed = time.monotonic()
        self.dep.wait_running(COORDINATORS + AGENTS)
        wait_for("a leader after healing", self.farm.leader, 90)
        if alone:
            port = self.metrics_port(alone)
            wait_for(f"/readyz 200 on {alone} after healing", lambda: readyz(port) == 200, 60)
        self.recoveries.append((kind, time.monotonic() - healed))

    def lose_data_dir(self):
        """A coordinator loses its disk: taken out of the membership, emptied, started again as
        a joining node and added back under its id; it must catch up (from a snapshot or the
        log) before the farm counts as healed."""
        victim = self.rng.choice(COORDINATORS)
        node = victim.rsplit("-", 1)[1]
        wait_for(f"remove-node {node}",
                 lambda: self.farm.run("cluster", "remove-node", node, timeout=60).returncode == 0, 90)
        self.dep.wipe_and_rejoin(victim, REJOIN_FILE)
        wait_for(f"add-node {node}", lambda: self.farm.run(
            "cluster", "add-node", f"{node}={victim}:7000", timeout=60).returncode == 0, 90)
        self.notes.append(f"lose-data-dir: {victim} emptied and re-joined")

    def leased_agents(self):
        try:
            return {j["agent"] for j in self.farm.jobs() if j["state"] == "leased" and j["agent"]}
        except (RuntimeError, subprocess.TimeoutExpired):
            return set()

    def pause_past_lease(self):
        """An agent frozen mid-job past its lease wakes up and completes under a stale token:
        the registry is paused so a job stalls on its agent, the agent is paused, the registry
        resumes, the job is leased again and finished elsewhere; then the frozen agent resumes,
        cut from the coordinators until its own job is done, so its completion comes late."""
        self.dep.pause("registry")
        try:
            stalled = wait_for("a job leased while the registry is paused", self.pick_leased, 30)
        except RuntimeError:
            self.dep.unpause("registry")
            self.notes.append("pause-agent-past-lease: no job was leased; skipped")
            return
        job_id, agent = stalled
        self.dep.pause(agent)
        self.dep.unpause("registry")

        def moved_on():
            job = next((j for j in self.farm.jobs() if j["id"] == job_id), None)
            return job and (job["state"] in ("succeeded", "failed") or job["agent"] not in (None, agent))
        wait_for(f"{job_id} taken from the paused {agent}", moved_on, self.lease_ms / 1000 * 4 + 30)
        for coordinator in COORDINATORS:
            self.dep.cut(agent, coordinator)
        self.dep.unpause(agent)
        time.sleep(3)
        self.notes.append(f"pause-agent-past-lease: {agent} frozen holding {job_id}")

    def pick_leased(self):
        try:
            jobs = self.farm.jobs()
        except (RuntimeError, subprocess.TimeoutExpired):
            return None
        leased = [(j["id"], j["agent"]) for j in jobs
                  if j["state"] == "leased" and j["agent"] and j["kind"] == "copy"]
        return leased[0] if leased else None


def campaign_digests(report):
    return {f"{d['namespace']}/{d['name']}": d["newImage"] for d in report["domains"]}


def submit_campaign(farm, baseline_dir, name, work):
    """The undisturbed run's campaign file under another name, with room for retries."""
    text = open(os.path.join(baseline_dir, "campaign.yaml")).read()
    text = text.replace("name: cpu-2026-10", f"name: {name}").replace("retries: 3", "retries: 20")
    path = os.path.join(work, f"{name}.yaml")
    with open(path, "w") as f:
        f.write(text)
    wait_for(f"campaign {name} submitted",
             lambda: farm.run("campaign", "submit", path, timeout=60).returncode == 0, 120)


def run_seed(seed, args, deployment, farm, work, broken):
    prefix = f"s{seed}{'b' if broken else ''}-{int(time.time())}-"
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    clients = Clients(farm, prefix)
    schedule = Schedule(seed, deployment, farm, args.lease_ms, print)
    campaign = f"faults-{prefix.rstrip('-')}"
    if broken:
        schedule.kinds = ["pause-agent-past-lease"] * 3
    else:
        submit_campaign(farm, args.report, campaign, work)
    clients.start()
    time.sleep(2)
    for kind in schedule.kinds:
        print(f"  seed {seed}: {kind}", flush=True)
        schedule.run_step(kind)
        time.sleep(1)
    clients.finish()
    ended = lambda: all(j["state"] in ("succeeded", "failed") for j in farm.jobs()
                        if j["requestId"].startswith(prefix) or j["campaign"] == campaign) or None
    wait_for("every job ended", ended, 180)
    jobs = farm.jobs()
    campaign_check = None
    if not broken:
        out = os.path.join(work, campaign)
        done = farm.run("campaign", "report", campaign, "--out", out, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"campaign report {campaign}: {done.stderr.strip()}")
        undisturbed = campaign_digests(json.load(open(os.path.join(args.report, "report.json"))))
        disturbed = campaign_digests(json.load(open(os.path.join(out, "report.json"))))
        campaign_check = ([j for j in jobs if j["campaign"] == campaign], undisturbed, disturbed)
    verdict = check(clients.history, jobs, prefix, campaign_check)
    refused = sum(deployment.logs(a, started).count("stale fencing token") for a in AGENTS)
    verdict.figures.update(
        seed=seed, nemeses=len(schedule.kinds), stale_completions_refused=refused,
        recovery_s={kind: round(s, 2) for kind, s in schedule.recoveries},
    )
    for note in schedule.notes:
        print(f"    {note}")
    return verdict


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--report", required=True)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--broken", action="store_true")
    parser.add_argument("--lease-ms", type=int, default=int(os.environ.get("PATCHFARM_LEASE_MS", "4000")))
    parser.add_argument("--work", default="/tmp/patchfarm-faults")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    registry = f"{os.environ.get('PATCHFARM_REGISTRY_IP', '172.29.0.10')}:5000"
    os.environ.setdefault("PATCHFARM_INSECURE_REGISTRIES", registry)
    farm = Farm(os.path.join(args.bin, "patchfarm"), registry)
    deployment = Deployment(COMPOSE_FILE, os.environ.get("COMPOSE_PROJECT_NAME", "patchfarm"))
    failed = 0
    totals = {"schedules": 0, "nemeses": 0, "operations": 0, "acknowledged": 0, "lost": 0}
    recoveries = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        verdict = run_seed(seed, args, deployment, farm, args.work, args.broken)
        print(f"seed {seed}: {json.dumps(verdict.figures)}", flush=True)
        totals["schedules"] += 1
        for key in ("nemeses", "operations", "acknowledged", "lost"):
            totals[key] += verdict.figures[key]
        recoveries += verdict.figures["recovery_s"].values()
        if args.broken:
            caught = [p for p in verdict.problems if "stale token" in p or "accepted results" in p]
            if caught:
                print(f"seed {seed}: the checker caught the farm without fencing: {caught[0]}")
            else:
                print(f"seed {seed}: FAILED: fencing was off and the checker saw nothing "
                      f"({verdict.problems or 'no problems'})")
                failed += 1
        elif verdict.problems:
            failed += 1
            print(f"seed {seed}: FAILED ({len(verdict.problems)} problems)")
            for problem in verdict.problems[:30]:
                print(f"    {problem}")
        else:
            print(f"seed {seed}: passed the checker")
    recoveries.sort()
    print(f"fault suite: {totals['schedules']} schedules, {totals['nemeses']} nemeses, "
          f"{totals['operations']} operations, {totals['acknowledged']} acknowledged submissions, "
          f"{totals['lost']} lost; recovery after a heal: median {recoveries[len(recoveries) // 2]:.2f} s, "
          f"max {recoveries[-1]:.2f} s; {failed} seed(s) failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
