"""The checker's own test (no Docker): each kind of violation in a made-up history and job list
is reported, and a clean run reports nothing. Run by tests/faults/ci.sh before the suite."""

from checker import Op, check


def job(id, request, state="succeeded", completions=()):
    return {"id": id, "requestId": request, "state": state, "campaign": "", "error": "",
            "completions": [dict(agent=a, fencingToken=t, leaseToken=l, success=s, raftIndex=i)
                            for a, t, l, s, i in completions]}


def test_a_clean_run_has_no_problems():
    jobs = [job("job-1", "p-1", completions=[("a", 3, 3, False, 7), ("b", 5, 5, True, 9)]),
            job("job-2", "p-2", "failed", [("a", 4, 4, False, 8)])]
    history = [Op("p-1", 0, "ok", "job-1"), Op("p-2", 0, "ok", "job-2"), Op("p-3", 0, "unknown")]
    verdict = check(history, jobs, "p-")
    assert verdict.ok, verdict.problems
    assert verdict.figures["acknowledged"] == 2 and verdict.figures["lost"] == 0


def test_every_violation_is_reported():
    jobs = [job("job-1", "p-1"), job("job-9", "p-1"),
            job("job-2", "p-2", completions=[("a", 4, 4, True, 9), ("", 2, 0, True, 10)]),
            job("job-3", "p-3", "leased"),
            job("job-4", "p-4")]
    history = [Op("p-1", 0, "ok", "job-1"), Op("p-2", 0, "ok", "job-2"),
               Op("p-5", 0, "ok", "job-5"), Op("p-4", 0, "fail", error="refused")]
    campaign = ([], {"prod/a": "r@sha256:1"}, {"prod/a": "r@sha256:2"})
    problems = "\n".join(check(history, jobs, "p-", campaign).problems)
    for expected in ["p-5 (job-5) is gone", "p-1 was job-1, the farm has ['job-1', 'job-9']",
                     "request p-1 became 2 jobs", "refused submission p-4",
                     "job-2 has 2 accepted results", "stale token 2 was accepted",
                     "out of token order", "job-3 did not end", "campaign: prod/a"]:
        assert expected in problems, f"{expected!r} not reported in:\n{problems}"


if __name__ == "__main__":
    test_a_clean_run_has_no_problems()
    test_every_violation_is_reported()
    print("checker_test: 2 passed")
