//! `GET /api`: the route table as JSON, so a visitor (or a script) can discover the API.

use serde_json::json;

use crate::context::{Cx, Handler, Shared, Tr, json_response};
use crate::problem::Problem;
use crate::reply::Reply;
use crate::routes::ROUTES;
use redge::plan::Plan;

/// The index route.
pub(crate) struct Index;

impl Handler for Index {
    type Pending = ();

    async fn prepare(_cx: &Cx, _plan: &Plan<'_, Tr>) -> Result<(), Problem> {
        Ok(())
    }

    async fn respond(_cx: &Cx, _: (), _: Shared) -> Result<Reply, Problem> {
        let routes: Vec<_> = ROUTES
            .iter()
            .map(
                |r| json!({ "method": r.method.as_str(), "path": r.pattern, "group": r.group.as_str(), "summary": r.summary }),
            )
            .collect();
        json_response(200, &json!({ "routes": routes }))
    }
}
