//! The threads that check and hash passwords: one per core, below the rest of Hookboard's
//! scheduling priority, all but one pacing themselves.
//!
//! A hash takes a core for tens of milliseconds and 19 MiB on purpose. On the blocking pool
//! at normal priority a burst of logins took both cores, and every page waited its turn
//! behind the hashes. Here at most one hash per core runs at a time (a flood queues instead
//! of taking the machine's memory), pages win the CPU whenever both want it, and a handler
//! awaits its answer; no thread is parked waiting for a turn.
//!
//! Priority alone did not keep the pages quick during a burst: with every core hashing back
//! to back, 40 clients logging in again and again on 2 cores, the pages' p99 meanwhile was
//! 38 to 95 ms in `make bench` (p50 2 to 4 ms), at nice 10 as under `SCHED_IDLE`, though
//! a page's threads then take the CPU at once. The tail follows how much of the machine
//! hashes: with one thread hashing it was 9 to 10 ms, but logins fell to 50% of the
//! machine's argon2 ceiling. So the first thread hashes back to back and the others rest
//! after each hash as long as it took ([`rest_after`]): on 2 cores logins ran at 56% of the
//! ceiling and the pages' p99 at 7 to 24 ms (`BENCH=pages make bench`).
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads' nice value: under the default 0 of everything else, a hash gets
/// about a tenth of a core that a page also wants. An unprivileged process may always lower
/// its own priority.
const NICE: i32 = 10;

/// How long a hashing thread keeps its argon2 memory without a job: a burst of logins
/// reuses it, an idle server gives it back.
const KEEP_MEMORY: Duration = Duration::from_secs(60);

/// Runs `work` (a hash, a check) on a hashing thread and answers what it returns.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    static QUEUE: LazyLock<mpsc::Sender<Job>> = LazyLock::new(start);
    let (answer, answered) = oneshot::channel();
    QUEUE
        .send(Box::new(move || {
            // The handler may have gone (its client hung up); nobody to tell then.
            let _ = answer.send(work());
        }))
        .map_err(|_| anyhow::anyhow!("the password hashing threads are gone"))?;
    answered
        .await
        .map_err(|_| anyhow::anyhow!("password hashing panicked"))
}

/// Starts one hashing thread per core, taking jobs from the returned queue.
fn start() -> mpsc::Sender<Job> {
    let (queue, jobs) = mpsc::channel::<Job>();
    let jobs = Arc::new(Mutex::new(jobs));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    for i in 0..cores {
        let jobs = jobs.clone();
        std::thread::Builder::new()
            .name(format!("password-hashing-{i}"))
            .spawn(move || {
                lower_priority();
                loop {
                    let waiting = jobs.lock().unwrap_or_else(PoisonError::into_inner);
                    let next = match waiting.recv_timeout(KEEP_MEMORY) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            // No login for a while: the argon2 memory goes back.
                            crate::auth::password::release_memory();
                            waiting.recv().ok()
                        }
                        next => next.ok(),
                    };
                    drop(waiting);
                    let Some(job) = next else { return };
                    // A panic is reported by the hook and answers an error to its caller
                    // (the answer is dropped); the thread stays for the next job.
                    let began = Instant::now();
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    // After the answer: a lone login never waits for a rest.
                    std::thread::sleep(rest_after(i, began.elapsed()));
                }
            })
            .expect("the password hashing threads start");
    }
    queue
}

/// How long hashing thread `thread` rests after a hash that took `took`: the first never,
/// the others as long as the hash took (see the module's documentation).
fn rest_after(thread: usize, took: Duration) -> Duration {
    if thread == 0 { Duration::ZERO } else { took }
}

/// Sets the calling thread's nice value to [`NICE`]: on Linux, nice is per thread.
#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: plain system calls about the calling thread only.
    let lowered = unsafe {
        nix::libc::setpriority(
            nix::libc::PRIO_PROCESS,
            nix::libc::gettid() as nix::libc::id_t,
            NICE,
        )
    };
    if lowered != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "password hashing runs at normal priority"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    fn nice_of_this_thread() -> i32 {
        // SAFETY: reads the calling thread's priority.
        unsafe { nix::libc::getpriority(nix::libc::PRIO_PROCESS, nix::libc::gettid() as nix::libc::id_t) }
    }

    #[actix_web::test]
    async fn work_runs_on_a_hashing_thread_and_answers() {
        let name = run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("password-hashing-"));
    }

    #[cfg(target_os = "linux")]
    #[actix_web::test]
    async fn hashing_threads_yield_to_the_rest() {
        let here = nice_of_this_thread();
        let there = run(nice_of_this_thread).await.unwrap();
        assert!(
            there >= NICE && there >= here,
            "hashing nice {there}, caller {here}"
        );
    }

    #[actix_web::test]
    async fn a_panic_answers_an_error_and_the_threads_go_on() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        for _ in 0..cores {
            assert!(run(|| -> u8 { panic!("on purpose") }).await.is_err());
        }
        assert_eq!(run(|| 2 + 2).await.unwrap(), 4);
    }
}
