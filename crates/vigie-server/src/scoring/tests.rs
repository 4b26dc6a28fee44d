//! Which requests leave the runtime: checked on a one-thread runtime, where
//! work done inline would keep every other task from running.

use std::time::Duration;

use super::{INLINE_ROWS, run};

fn one_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a runtime")
}

#[test]
fn a_small_request_is_scored_on_the_runtime_thread() {
    let runtime = one_thread();
    let runtime_thread = std::thread::current().id();
    let ran_on =
        runtime.block_on(run(INLINE_ROWS, || Ok(std::thread::current().id()))).expect("scored");
    assert_eq!(ran_on, runtime_thread);
}

#[test]
fn a_large_request_leaves_the_runtime_free_for_other_tasks() {
    let runtime = one_thread();
    let runtime_thread = std::thread::current().id();
    let (ran_on, other_task_ran) = runtime.block_on(async {
        let (sender, receiver) = std::sync::mpsc::channel();
        // Runs only if the runtime's one thread is free while the large request is scored.
        tokio::spawn(async move { sender.send(()) });
        run(INLINE_ROWS + 1, move || {
            // A bound for a failing run, not a wait the passing run relies on.
            let other_task_ran = receiver.recv_timeout(Duration::from_secs(10)).is_ok();
            Ok((std::thread::current().id(), other_task_ran))
        })
        .await
        .expect("scored")
    });
    assert_ne!(ran_on, runtime_thread);
    assert!(other_task_ran, "the runtime was blocked while the large request was scored");
}
