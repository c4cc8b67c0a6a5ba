//! Panics turned into messages, so one input's bug is reported as that input's failure (with
//! what the bug said) while the process goes on serving the rest.

use std::any::Any;

/// The text a panic was raised with.
pub fn message(panic: &(dyn Any + Send)) -> String {
    (panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// A joined blocking task's result, its panic (or cancellation) as a message.
pub fn joined<T>(result: Result<T, tokio::task::JoinError>) -> Result<T, String> {
    result.map_err(|error| match error.try_into_panic() {
        Ok(panic) => message(panic.as_ref()),
        Err(error) => error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_blocking_tasks_panic_keeps_its_message() {
        let formatted = tokio::task::spawn_blocking(|| -> u8 { panic!("bad byte at {}", 7) });
        assert_eq!(super::joined(formatted.await), Err("bad byte at 7".into()));
        let literal = tokio::task::spawn_blocking(|| -> u8 { panic!("literal") });
        assert_eq!(super::joined(literal.await), Err("literal".into()));
        assert_eq!(
            super::joined(tokio::task::spawn_blocking(|| 3).await),
            Ok(3)
        );
    }
}
