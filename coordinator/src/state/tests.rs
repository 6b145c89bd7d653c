//! State machine tests: one entry's commands in order with per-command undo; lapsed leases,
//! backoff and the attempts cap.

mod batches {
    use crate::state::*;
    use patchfarm_proto::state::LeaseJobs;
    use patchfarm_proto::v1::job_spec::Verb;
    use patchfarm_proto::v1::{JobSpec, JobState, NoopJob, SubmitJobRequest};

    fn submit(request_id: &str, kind: &str) -> Command {
        Command {
            request_id: request_id.into(),
            now_unix_ms: 1,
            op: Some(Op::SubmitJob(SubmitJobRequest {
                request_id: request_id.into(),
                spec: Some(JobSpec {
                    // Any typed verb will do for the state machine; none is an argv-era entry.
                    verb: (kind != "format-disk").then_some(Verb::Noop(NoopJob {})),
                    ..Default::default()
                }),
            })),
        }
    }

    #[test]
    fn one_entry_applies_its_commands_in_order_and_a_refusal_leaves_no_trace() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let state = StateMachine::open(&db).unwrap();
        let lease = Command {
            request_id: "lease".into(),
            now_unix_ms: 2,
            op: Some(Op::LeaseJobs(LeaseJobs {
                agent: "agent-1".into(),
                max_jobs: 5,
                lease_ms: 1000,
                job_ids: Vec::new(),
            })),
        };
        let results = state
            .apply(
                7,
                &[
                    submit("a", "create"),
                    submit("bad", "format-disk"),
                    submit("a", "create"),
                    lease,
                ],
            )
            .unwrap();
        let job = |i: usize| match &results[i].0.outcome {
            Some(Outcome::Job(job)) => job.clone(),
            other => panic!("result {i}: {other:?}"),
        };
        assert_eq!(job(0).id, "job-00000001");
        assert!(
            matches!(Refusal::of(&results[1].0), Some(Refusal::InvalidArgument(e)) if e.contains("no typed verb")),
            "{:?}",
            results[1].0
        );
        assert_eq!(
            job(2).id,
            "job-00000001",
            "the same request id is the same job"
        );
        match &results[3].0.outcome {
            Some(Outcome::Leased(leased)) => {
                assert_eq!(
                    leased.jobs.len(),
                    1,
                    "the job submitted earlier in the entry is leased"
                );
                assert_eq!(leased.jobs[0].lease.as_ref().unwrap().fencing_token, 1);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(state.applied().unwrap(), 7);
        let stored = state.job("job-00000001").unwrap().unwrap();
        assert_eq!(stored.state(), JobState::Leased);
        // The refused submission consumed no id.
        let next = state.apply(8, &[submit("b", "update")]).unwrap();
        assert!(matches!(&next[0].0.outcome, Some(Outcome::Job(j)) if j.id == "job-00000002"));
    }
}

mod leases {
    use crate::state::*;
    use patchfarm_proto::state::{ExpireLeases, FencedJob, LeaseJobs};
    use patchfarm_proto::v1::{JobSpec, JobState, SubmitJobRequest};

    fn command(id: &str, now: i64, op: Op) -> Command {
        Command {
            request_id: id.into(),
            now_unix_ms: now,
            op: Some(op),
        }
    }

    fn lease_and_expire(state: &StateMachine, index: u64, now: i64, job: &str) -> Job {
        let leased = state
            .apply(
                index,
                &[command(
                    &format!("lease-{index}"),
                    now,
                    Op::LeaseJobs(LeaseJobs {
                        agent: "a".into(),
                        max_jobs: 1,
                        lease_ms: 1000,
                        job_ids: vec![job.into()],
                    }),
                )],
            )
            .unwrap();
        let token = match &leased[0].0.outcome {
            Some(Outcome::Leased(l)) => l.jobs[0].lease.as_ref().unwrap().fencing_token,
            other => panic!("{other:?}"),
        };
        state
            .apply(
                index + 1,
                &[command(
                    &format!("expire-{index}"),
                    now + 5000,
                    Op::ExpireLeases(ExpireLeases {
                        jobs: vec![FencedJob {
                            job_id: job.into(),
                            fencing_token: token,
                        }],
                        reason: "agent a is down".into(),
                    }),
                )],
            )
            .unwrap();
        state.job(job).unwrap().unwrap()
    }

    #[test]
    fn a_lapsed_lease_requeues_with_backoff_until_attempts_run_out() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let state = StateMachine::open(&db).unwrap();
        let submit = Op::SubmitJob(SubmitJobRequest {
            request_id: "s".into(),
            spec: Some(JobSpec {
                verb: Some(patchfarm_proto::v1::job_spec::Verb::Noop(Default::default())),
                max_attempts: 2,
                ..Default::default()
            }),
        });
        state.apply(1, &[command("s", 0, submit)]).unwrap();
        let job = lease_and_expire(&state, 2, 10, "job-00000001");
        assert_eq!(job.state(), JobState::Queued);
        assert_eq!(job.not_before_unix_ms, 5010 + 500, "first backoff: 0.5 s");
        assert!(job.error.contains("agent a is down"), "{}", job.error);
        assert_eq!(state.queued_jobs().unwrap().len(), 1);
        assert!(state.leased_jobs().unwrap().is_empty());

        let job = lease_and_expire(&state, 4, 6000, "job-00000001");
        assert_eq!(job.state(), JobState::Failed, "attempts spent");
        assert_eq!(job.attempts, 2);
        assert!(job.error.contains("lapsed"), "{}", job.error);
        assert!(state.queued_jobs().unwrap().is_empty());
        // An expiry with a stale token changes nothing.
        let again = state
            .apply(
                6,
                &[command(
                    "late",
                    7000,
                    Op::ExpireLeases(ExpireLeases {
                        jobs: vec![FencedJob {
                            job_id: "job-00000001".into(),
                            fencing_token: 1,
                        }],
                        reason: "x".into(),
                    }),
                )],
            )
            .unwrap();
        assert!(matches!(&again[0].0.outcome, Some(Outcome::Submitted(s)) if s.jobs.is_empty()));
    }

    /// The audit the fault suite checks: only the current lease's completion is accepted and
    /// recorded; one under a lapsed lease's token is refused and leaves no trace.
    #[test]
    fn accepted_completions_are_recorded_and_stale_ones_refused() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let state = StateMachine::open(&db).unwrap();
        let submit = Op::SubmitJob(SubmitJobRequest {
            request_id: "s".into(),
            spec: Some(JobSpec {
                verb: Some(patchfarm_proto::v1::job_spec::Verb::Noop(Default::default())),
                ..Default::default()
            }),
        });
        state.apply(1, &[command("s", 0, submit)]).unwrap();
        let lapsed = lease_and_expire(&state, 2, 10, "job-00000001");
        assert!(lapsed.completions.is_empty());
        let leased = state
            .apply(
                4,
                &[command(
                    "lease-again",
                    9000,
                    Op::LeaseJobs(LeaseJobs {
                        agent: "b".into(),
                        max_jobs: 1,
                        lease_ms: 1000,
                        job_ids: vec!["job-00000001".into()],
                    }),
                )],
            )
            .unwrap();
        let current = match &leased[0].0.outcome {
            Some(Outcome::Leased(l)) => l.jobs[0].lease.as_ref().unwrap().fencing_token,
            other => panic!("{other:?}"),
        };
        let complete = |index, request: &str, token| {
            let op = Op::CompleteJob(patchfarm_proto::v1::CompleteRequest {
                job_id: "job-00000001".into(),
                fencing_token: token,
                success: true,
                ..Default::default()
            });
            state.apply(index, &[command(request, 9500, op)]).unwrap()
        };
        let stale = complete(5, "stale", current - 1);
        assert!(Refusal::of(&stale[0].0).is_some(), "{stale:?}");
        assert!(state
            .job("job-00000001")
            .unwrap()
            .unwrap()
            .completions
            .is_empty());
        complete(6, "current", current);
        let job = state.job("job-00000001").unwrap().unwrap();
        assert_eq!(job.state(), JobState::Succeeded);
        assert_eq!(job.completions.len(), 1);
        let accepted = &job.completions[0];
        assert_eq!(
            (
                accepted.agent.as_str(),
                accepted.fencing_token,
                accepted.lease_token
            ),
            ("b", current, current)
        );
        assert_eq!(accepted.raft_index, 6);
    }
}

mod refusals {
    use crate::state::*;
    use patchfarm_proto::v1::{CancelJobRequest, CompleteRequest};

    fn apply(state: &StateMachine, index: u64, request_id: &str, op: Op) -> CommandResult {
        let command = Command {
            request_id: request_id.into(),
            now_unix_ms: 1,
            op: Some(op),
        };
        state.apply(index, &[command]).unwrap().remove(0).0
    }

    #[test]
    fn refusals_keep_their_kind_and_a_retry_hears_the_same() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let state = StateMachine::open(&db).unwrap();
        let cancel = Op::CancelJob(CancelJobRequest {
            id: "job-00000404".into(),
            ..Default::default()
        });
        let first = apply(&state, 1, "c", cancel.clone());
        assert!(
            matches!(Refusal::of(&first), Some(Refusal::NotFound(m)) if m.contains("job-00000404")),
            "{first:?}"
        );
        assert_eq!(
            apply(&state, 2, "c", cancel),
            first,
            "remembered by request id"
        );
        let stale = Op::CompleteJob(CompleteRequest {
            job_id: "job-00000404".into(),
            fencing_token: 9,
            ..Default::default()
        });
        assert!(matches!(
            Refusal::of(&apply(&state, 3, "d", stale)),
            Some(Refusal::NotFound(_))
        ));
        let missing = Op::CatalogDelete("wls_1".into());
        assert!(matches!(
            Refusal::of(&apply(&state, 4, "e", missing)),
            Some(Refusal::NotFound(_))
        ));
        // An older release remembered refusals as bare messages: still a refusal.
        let old = CommandResult {
            outcome: Some(Outcome::Error("stale fencing token".into())),
        };
        assert!(matches!(
            Refusal::of(&old),
            Some(Refusal::FailedPrecondition(_))
        ));
    }
}
