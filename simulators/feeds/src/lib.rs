//! A local CISA KEV catalog and FIRST EPSS scores feed ([`contract`]): the documents a test
//! sets, served at the official paths, with faults to show that a failed refresh changes
//! nothing (an error status, or a body that is not the feed).

pub mod contract;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State as AxumState;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

/// What a request gets instead of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// This status with an HTML error page.
    Status(u16),
    /// 200 with this body (a captive portal, a proxy's page).
    Body(String),
}

#[derive(Default)]
struct State {
    kev: String,
    epss: String,
    fault: Option<Fault>,
    requests: usize,
}

/// The running simulator; stops when dropped.
pub struct FeedsSim {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: CancellationToken,
}

impl Drop for FeedsSim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn serve(state: &Arc<Mutex<State>>, pick: fn(&State) -> String, media: &'static str) -> Response {
    let mut state = state.lock().expect("feeds sim state");
    state.requests += 1;
    match &state.fault {
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, [(header::CONTENT_TYPE, "text/html")], "<html>unavailable</html>").into_response()
        }
        Some(Fault::Body(body)) => ([(header::CONTENT_TYPE, "text/html")], body.clone()).into_response(),
        None => ([(header::CONTENT_TYPE, media)], pick(&state)).into_response(),
    }
}

impl FeedsSim {
    pub async fn start() -> std::io::Result<FeedsSim> {
        let state = Arc::new(Mutex::new(State::default()));
        let stop = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let router = axum::Router::new()
            .route(
                contract::KEV_PATH,
                get(|AxumState(s): AxumState<Arc<Mutex<State>>>| async move {
                    serve(&s, |st| st.kev.clone(), contract::KEV_MEDIA_TYPE)
                }),
            )
            .route(
                contract::EPSS_PATH,
                get(|AxumState(s): AxumState<Arc<Mutex<State>>>| async move {
                    serve(&s, |st| st.epss.clone(), contract::EPSS_MEDIA_TYPE)
                }),
            )
            .with_state(state.clone());
        let shutdown = stop.clone();
        tokio::spawn(async move {
            if let Err(error) =
                axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned()).await
            {
                tracing::error!(%error, "Feeds simulator stopped.");
            }
        });
        Ok(FeedsSim { address, state, stop })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("feeds sim state")
    }

    pub fn kev_url(&self) -> String {
        format!("http://{}{}", self.address, contract::KEV_PATH)
    }

    pub fn epss_url(&self) -> String {
        format!("http://{}{}", self.address, contract::EPSS_PATH)
    }

    pub fn set_kev(&self, json: &str) {
        self.state().kev = json.to_owned();
    }

    pub fn set_epss(&self, csv: &str) {
        self.state().epss = csv.to_owned();
    }

    /// Every request fails this way until cleared with `None`.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.state().fault = fault;
    }

    /// Requests served so far.
    pub fn requests(&self) -> usize {
        self.state().requests
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_the_documents_at_the_official_paths_and_faults_on_demand() {
        let sim = FeedsSim::start().await.unwrap();
        sim.set_kev("{\"vulnerabilities\": []}");
        sim.set_epss("#model_version:v1,score_date:2026-12-01T00:00:00Z\ncve,epss,percentile\n");
        let http = reqwest::Client::new();
        let kev = http.get(sim.kev_url()).send().await.unwrap();
        assert_eq!(kev.headers()[header::CONTENT_TYPE], contract::KEV_MEDIA_TYPE);
        assert!(sim.kev_url().ends_with("/feeds/known_exploited_vulnerabilities.json"));
        assert_eq!(kev.text().await.unwrap(), "{\"vulnerabilities\": []}");
        let epss = http.get(sim.epss_url()).send().await.unwrap().text().await.unwrap();
        assert!(epss.starts_with(contract::EPSS_COMMENT_PREFIX));
        assert_eq!(epss.lines().nth(1), Some(contract::EPSS_HEADER));
        sim.set_fault(Some(Fault::Status(503)));
        assert_eq!(http.get(sim.kev_url()).send().await.unwrap().status(), 503);
        assert_eq!(sim.requests(), 3);
    }
}
