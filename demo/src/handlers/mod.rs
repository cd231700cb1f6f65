//! Route handlers: a few lines each, calling the library. See [`super::context`] for how a handler
//! takes part in the request's one round trip.

pub mod cache;
pub mod dashboard;
pub mod health;
pub mod index;
pub mod metrics;
pub mod ratelimit;
pub mod session;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

use crate::context::{Cx, run};
use crate::problem::Problem;
use crate::reply::Reply;
use crate::routes::RouteId;

/// Runs the handler of the request's route, with the middleware.
pub(crate) async fn run_route(cx: &Cx) -> Result<Reply, Problem> {
    match cx.route.id {
        RouteId::Index => run::<index::Index>(cx).await,
        RouteId::Health => run::<health::Health>(cx).await,
        RouteId::Metrics => run::<metrics::Metrics>(cx).await,
        RouteId::SessionSignIn => run::<session::SignIn>(cx).await,
        RouteId::SessionCurrent => run::<session::Current>(cx).await,
        RouteId::SessionUpdate => run::<session::Patch>(cx).await,
        RouteId::SessionSignOut => run::<session::SignOutCurrent>(cx).await,
        RouteId::SessionList => run::<session::List>(cx).await,
        RouteId::SessionRevoke => run::<session::RevokeOne>(cx).await,
        RouteId::SessionSignOutAll => run::<session::SignOutAll>(cx).await,
        RouteId::Lookup => run::<cache::Get>(cx).await,
        RouteId::LookupInvalidate => run::<cache::Invalidate>(cx).await,
        RouteId::LookupInvalidateTag => run::<cache::InvalidateTag>(cx).await,
        RouteId::CacheMetrics => run::<cache::Metrics>(cx).await,
        RouteId::RateLimitList => run::<ratelimit::List>(cx).await,
        RouteId::RateLimitSpend => run::<ratelimit::Spend>(cx).await,
        RouteId::RateLimitPeek => run::<ratelimit::Peek>(cx).await,
        RouteId::RateLimitReset => run::<ratelimit::Reset>(cx).await,
        RouteId::Dashboard => run::<dashboard::Dashboard>(cx).await,
    }
}
