//! Following the daemon's events: a stream that survives daemon restarts and slow spells. When
//! the stream ends (the daemon stopped) or the daemon ended it (this watcher fell behind), it
//! reconnects and resumes after the last sequence it delivered, from the daemon's event log:
//! nothing is missed and nothing is delivered twice.

use std::time::Duration;

use futures_util::Stream;
use tonic::{Code, Status};

use crate::proto::watchdog_service_client::WatchdogServiceClient;
use crate::proto::{WatchRequest, WatchResponse};
use crate::{connect_with, Target, TlsOptions};

/// First wait before reconnecting; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Whether a watch ended by `status` can be resumed by watching again.
fn resumable(status: &Status) -> bool {
    matches!(
        status.code(),
        // Daemon restarting or unreachable; this watcher fell behind (the log still has it).
        Code::Unavailable | Code::Unknown | Code::ResourceExhausted | Code::Cancelled
    )
}

struct State {
    target: Target,
    tls: TlsOptions,
    request: WatchRequest,
    /// The last sequence delivered (events, or a snapshot's position).
    last: Option<u64>,
    stream: Option<tonic::Streaming<WatchResponse>>,
    backoff: Duration,
}

impl State {
    /// The request for the next connection: after the first, resume from `last`.
    fn next_request(&self) -> WatchRequest {
        match self.last {
            Some(seq) => WatchRequest {
                snapshot: false,
                since_sequence: Some(seq),
                ..self.request.clone()
            },
            None => self.request.clone(),
        }
    }

    async fn open(&mut self) -> Result<(), Status> {
        let channel = connect_with(&self.target, &self.tls)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let stream = WatchdogServiceClient::new(channel)
            .watch(self.next_request())
            .await?
            .into_inner();
        self.stream = Some(stream);
        Ok(())
    }

    async fn pause(&mut self) {
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}

/// Follows the events `request` asks for (filters, `since_sequence`, `snapshot`) until an error
/// that watching again cannot fix (a bad request, a compacted position: OUT_OF_RANGE), which is
/// yielded last. Reconnects with back-off while the daemon is away.
pub fn watch(
    target: Target,
    tls: TlsOptions,
    request: WatchRequest,
) -> impl Stream<Item = Result<WatchResponse, Status>> {
    let state = State {
        target,
        tls,
        request,
        last: None,
        stream: None,
        backoff: FIRST_BACKOFF,
    };
    futures_util::stream::unfold(Some(state), |state| async move {
        let mut st = state?;
        loop {
            if st.stream.is_none() {
                if let Err(e) = st.open().await {
                    if !resumable(&e) {
                        return Some((Err(e), None));
                    }
                    st.pause().await;
                    continue;
                }
            }
            let stream = st.stream.as_mut()?;
            match stream.message().await {
                Ok(Some(msg)) => {
                    st.backoff = FIRST_BACKOFF;
                    if let Some(e) = &msg.event {
                        st.last = Some(e.sequence);
                    } else if msg.snapshot_complete {
                        st.last = Some(msg.snapshot_sequence);
                    }
                    return Some((Ok(msg), Some(st)));
                }
                // A clean end: the daemon is shutting down. Resume once it is back.
                Ok(None) => {
                    st.stream = None;
                    st.pause().await;
                }
                Err(e) if resumable(&e) => {
                    st.stream = None;
                    st.pause().await;
                }
                Err(e) => return Some((Err(e), None)),
            }
        }
    })
}
