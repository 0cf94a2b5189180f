//! The threads password hashing runs on: a few of the node's own, at the lowest CPU priority.
//!
//! An argon2id computation is tens of milliseconds of one core. On tokio's blocking pool it
//! competed with the HTTP workers, Postgres and everything else at equal priority, so a flood
//! of sign-ins took a whole core from every other tenant's requests (docs/benchmarks.md,
//! "Sign-in flood"). Here each computation runs on one of `threads` threads (as many as the
//! gate has permits, so one is always free for a permit holder), each at nice 19: the kernel
//! still gives them the CPU the rest of the node leaves idle, and about 1/70 of a core against
//! each busy normal thread, so hashing never stops, but a request of another tenant waits
//! for hashing only as long as the kernel's time slice.
//!
//! Lowering a thread's own priority needs no privilege. If the system refuses, the threads run
//! at normal priority and the refusal is logged once per thread.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

type Job = Box<dyn FnOnce() + Send>;

/// A handle on the hashing threads; they end when the last handle is dropped.
#[derive(Clone)]
pub struct HashThreads {
    jobs: mpsc::Sender<Job>,
}

/// The work did not finish: it panicked, or the threads are gone (the node is stopping).
#[derive(Debug, thiserror::Error)]
#[error("the password hashing work did not finish")]
pub struct Unfinished;

impl HashThreads {
    /// Starts `threads` hashing threads (at least one), at the lowest priority if
    /// `low_priority`.
    pub fn start(threads: usize, low_priority: bool) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || {
                    if low_priority {
                        lower_priority();
                    }
                    loop {
                        // The lock is held only while waiting for the next job; a thread that
                        // panicked in a job never held it.
                        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        match next {
                            // A job that panics ends alone (its caller gets `Unfinished`); the
                            // thread goes on serving.
                            Ok(job) => drop(std::panic::catch_unwind(AssertUnwindSafe(job))),
                            Err(mpsc::RecvError) => return,
                        }
                    }
                })?;
        }
        Ok(Self { jobs })
    }

    /// Runs `work` on a hashing thread; its result.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Unfinished> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The caller may be gone (its request was dropped): the work is done regardless,
            // as the gate's permit it holds is released only when it finishes.
            drop(done.send(work()));
        });
        self.jobs.send(job).map_err(|_| Unfinished)?;
        result.await.map_err(|_| Unfinished)
    }
}

/// Nice 19 for the calling thread (Linux: nice is per thread).
fn lower_priority() {
    if let Err(error) =
        thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
    {
        tracing::warn!(
            ?error,
            "could not lower the priority of a password hashing thread"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's nice value, from /proc (Linux).
    fn nice_of_current_thread() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Fields after the command name (which is in parentheses and may hold spaces); nice is
        // field 19 of the whole line, the 17th after the name.
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(16).unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn work_runs_on_a_thread_of_lowest_priority_and_returns_its_result() {
        let threads = HashThreads::start(2, true).unwrap();
        let caller_nice = nice_of_current_thread();
        let (name, nice) = threads
            .run(|| {
                (
                    std::thread::current().name().map(str::to_owned),
                    nice_of_current_thread(),
                )
            })
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("argon2-"));
        assert_eq!(nice, 19);
        assert_eq!(
            nice_of_current_thread(),
            caller_nice,
            "the caller is untouched"
        );
    }

    #[tokio::test]
    #[allow(clippy::panic)]
    async fn a_job_that_panics_fails_alone_and_the_thread_serves_the_next() {
        let threads = HashThreads::start(1, true).unwrap();
        let failed = threads.run(|| -> u32 { panic!("a bug in a job") }).await;
        assert!(failed.is_err());
        assert_eq!(threads.run(|| 7).await.unwrap(), 7);
    }
}
