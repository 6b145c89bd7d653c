"""The fault suite's checker: reads the clients' history and the farm's jobs (with the
coordinators' audit of accepted completions) after a schedule, and says what went wrong."""

from dataclasses import dataclass, field

ENDED = ("succeeded", "failed")


@dataclass
class Op:
    """One client call: a submission under `request_id`; `kind` is ok, fail or unknown (the call
    timed out or no coordinator answered: it may or may not have happened)."""
    request_id: str
    invoked: float
    kind: str = "invoke"
    job: str = ""
    completed: float = 0.0
    error: str = ""


@dataclass
class Verdict:
    problems: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)

    @property
    def ok(self):
        return not self.problems


def check(history, jobs, prefix, campaign=None):
    """`history`: this schedule's Ops; `jobs`: every job of the farm (jobs list --json);
    `prefix`: the request ids this schedule used; `campaign`: (jobs of the disturbed campaign,
    digests of the undisturbed report, digests of the disturbed report) or None."""
    verdict = Verdict()
    by_request = {}
    for job in jobs:
        by_request.setdefault(job["requestId"], []).append(job)
    ours = [j for j in jobs if j["requestId"].startswith(prefix)]
    if campaign:
        ours += campaign[0]
    acknowledged = [op for op in history if op.kind == "ok"]
    lost = 0
    for op in acknowledged:
        found = by_request.get(op.request_id, [])
        if not found:
            lost += 1
            verdict.problems.append(f"acknowledged submission {op.request_id} ({op.job}) is gone")
        elif [j["id"] for j in found] != [op.job]:
            verdict.problems.append(
                f"acknowledged submission {op.request_id} was {op.job}, the farm has "
                f"{[j['id'] for j in found]}")
    for op in history:
        if op.kind == "fail" and by_request.get(op.request_id):
            verdict.problems.append(
                f"refused submission {op.request_id} ({op.error}) became "
                f"{[j['id'] for j in by_request[op.request_id]]}")
    for request_id, found in by_request.items():
        if request_id.startswith(prefix) and len(found) > 1:
            verdict.problems.append(
                f"request {request_id} became {len(found)} jobs: {[j['id'] for j in found]}")
    stale_accepted = 0
    for job in ours:
        if job["state"] not in ENDED:
            verdict.problems.append(f"{job['id']} did not end: {job['state']}")
        completions = job.get("completions", [])
        successes = [c for c in completions if c["success"]]
        if len(successes) > 1:
            verdict.problems.append(
                f"{job['id']} has {len(successes)} accepted results: "
                + ", ".join(f"token {c['fencingToken']} ({c['agent'] or 'no lease'})" for c in successes))
        for c in completions:
            if c["fencingToken"] != c["leaseToken"]:
                stale_accepted += 1
                verdict.problems.append(
                    f"{job['id']}: a completion with stale token {c['fencingToken']} was accepted "
                    f"(the lease's token was {c['leaseToken'] or 'none'})")
        tokens = [c["fencingToken"] for c in completions]
        if tokens != sorted(set(tokens)):
            verdict.problems.append(f"{job['id']}: completions out of token order: {tokens}")
    if campaign:
        _, undisturbed, disturbed = campaign
        if undisturbed != disturbed:
            for domain in sorted(set(undisturbed) | set(disturbed)):
                if undisturbed.get(domain) != disturbed.get(domain):
                    verdict.problems.append(
                        f"campaign: {domain} is {disturbed.get(domain)} under faults, "
                        f"{undisturbed.get(domain)} undisturbed")
    verdict.figures.update(
        operations=len(history),
        acknowledged=len(acknowledged),
        unknown=sum(op.kind == "unknown" for op in history),
        refused=sum(op.kind == "fail" for op in history),
        lost=lost,
        jobs=len(ours),
        succeeded=sum(j["state"] == "succeeded" for j in ours),
        stale_accepted=stale_accepted,
        # Failed jobs end too (attempts spent, e.g. leases lapsing under faults): say why.
        failed_because=sorted({j["error"][:160] for j in ours if j["state"] == "failed"})[:3],
    )
    return verdict
