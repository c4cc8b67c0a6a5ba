//! The signal queue (`--signal-queue-url`): long-polled for EventBridge's CloudTrail events
//! (`examples/aws/signals.cfn.yaml`), each message deleted once handled.

use aws_sdk_sqs::Client;
use std::time::Duration;

/// How long one receive waits for a message (SQS's longest long poll).
pub const WAIT_SECONDS: i32 = 20;
/// Messages taken per receive (SQS's most).
pub const MAX_MESSAGES: i32 = 10;
/// One attempt of a receive may take this long: the long poll and some room.
pub const RECEIVE_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(WAIT_SECONDS as u64 + 10);

/// A failed queue call: the service's code and message, or the SDK's.
#[derive(Debug, thiserror::Error)]
#[error("SQS {operation} on {queue}: {message}")]
pub struct SqsError {
    pub operation: &'static str,
    pub queue: String,
    pub message: String,
}

/// One message: its body, and the handle that deletes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub body: String,
    pub receipt_handle: String,
}

/// The queue at `url`.
#[derive(Clone, Debug)]
pub struct SignalQueue {
    client: Client,
    url: String,
}

impl SignalQueue {
    /// `config` gets [`RECEIVE_ATTEMPT_TIMEOUT`] per attempt, so the long poll is not cut short.
    pub fn new(config: &aws_config::SdkConfig, url: &str) -> SignalQueue {
        let config = super::with_timeouts(config, RECEIVE_ATTEMPT_TIMEOUT);
        SignalQueue {
            client: Client::new(&config),
            url: url.to_string(),
        }
    }

    /// Waits up to [`WAIT_SECONDS`] for at most [`MAX_MESSAGES`] messages.
    pub async fn receive(&self) -> Result<Vec<Message>, SqsError> {
        let output = (self.client.receive_message())
            .queue_url(&self.url)
            .wait_time_seconds(WAIT_SECONDS)
            .max_number_of_messages(MAX_MESSAGES)
            .send()
            .await
            .map_err(|e| self.error("ReceiveMessage", super::sdk_message(&e)))?;
        Ok((output.messages.unwrap_or_default().into_iter())
            .filter_map(|m| {
                Some(Message {
                    body: m.body.unwrap_or_default(),
                    receipt_handle: m.receipt_handle?,
                })
            })
            .collect())
    }

    /// Deletes a handled message.
    pub async fn delete(&self, message: &Message) -> Result<(), SqsError> {
        (self.client.delete_message())
            .queue_url(&self.url)
            .receipt_handle(&message.receipt_handle)
            .send()
            .await
            .map_err(|e| self.error("DeleteMessage", super::sdk_message(&e)))?;
        Ok(())
    }

    fn error(&self, operation: &'static str, message: String) -> SqsError {
        SqsError {
            operation,
            queue: self.url.clone(),
            message,
        }
    }
}
