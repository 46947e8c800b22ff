//! One request to one node of the account under verification, through a
//! direct [`Client`]: connect and ask within a timeout, and say in words
//! what failed. The runner, the nemesis and the process account read
//! status, account and conflict feed and push fault rules this way, the
//! same for every kind of account.

use std::time::Duration;

use crate::client::{Client, ClientError};

/// Connects to `endpoint` and makes one call, all within `timeout`; `Err`
/// says, in words, what failed.
pub async fn with_node<T, F, Fut>(endpoint: &str, timeout: Duration, call: F) -> Result<T, String>
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let answer = tokio::time::timeout(timeout, async {
        let client = Client::connect_direct(endpoint)
            .await
            .map_err(|e| e.to_string())?;
        call(client).await.map_err(|e| e.to_string())
    })
    .await;
    answer.unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
}
