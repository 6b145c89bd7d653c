//! Retries with exponential backoff for registry calls that fail transiently.

use std::future::Future;
use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Runs `op` until it succeeds, fails permanently (`is_transient` false), or attempts run out.
    pub async fn run<T, E, F, Fut>(
        &self,
        what: &str,
        is_transient: impl Fn(&E) -> bool,
        mut op: F,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let mut delay = self.first_delay;
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < self.attempts && is_transient(&e) => {
                    tracing::warn!(what, attempt, error = %e, retry_in_ms = delay.as_millis() as u64, "transient registry failure, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.max_delay);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn retries_transient_then_succeeds_and_stops_on_permanent() {
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy::default();
        let r: Result<u32, String> = policy
            .run(
                "t",
                |e: &String| e == "503",
                || async {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    if n < 2 {
                        Err("503".to_string())
                    } else {
                        Ok(n)
                    }
                },
            )
            .await;
        assert_eq!(r.unwrap(), 2);
        calls.store(0, Ordering::SeqCst);
        let r: Result<u32, String> = policy
            .run(
                "t",
                |e: &String| e == "503",
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err("401".to_string())
                },
            )
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
