//! The `Faults` gRPC service (`meridian fault isolate REGION`, `meridian
//! fault heal`): a client steers the fault layer of an in-process account,
//! so failover can be tried on one machine. Every region node serves it;
//! only a node started with [`FaultInjection::InProcess`] carries it out,
//! and a deployed node refuses it by name.
//!
//! [`FaultInjection::InProcess`]: crate::fault::FaultInjection::InProcess

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::config::AccountConfig;
use crate::error::Error;
use crate::fault::Faults;
use crate::wire::convert::fault_action_from_wire;
use crate::wire::pb::v1 as pb;
use crate::wire::pb::v1::faults_server::{Faults as FaultsRpc, FaultsServer};

/// What a `meridian server` node answers.
pub const FAULTS_NOT_SERVED: &str = "fault injection is served by `meridian dev` only: this node runs as `meridian server`, with no fault layer";

pub struct FaultsService {
    account: Arc<AccountConfig>,
    /// The process's fault layer when clients may steer it; `None` on a
    /// deployed node.
    faults: Option<Faults>,
}

impl FaultsService {
    pub fn server(
        account: Arc<AccountConfig>,
        faults: Option<Faults>,
    ) -> FaultsServer<FaultsService> {
        FaultsServer::new(FaultsService { account, faults })
    }
}

#[tonic::async_trait]
impl FaultsRpc for FaultsService {
    async fn apply(
        &self,
        request: Request<pb::FaultRequest>,
    ) -> Result<Response<pb::FaultResponse>, Status> {
        let Some(faults) = &self.faults else {
            return Err(Error::Refused(FAULTS_NOT_SERVED.into()).into());
        };
        let action = fault_action_from_wire(request.get_ref()).map_err(Error::InvalidArgument)?;
        let isolated = faults
            .apply(&self.account, &action)
            .map_err(Error::InvalidArgument)?;
        tracing::info!(?action, ?isolated, "a client changed the fault layer");
        Ok(Response::new(pb::FaultResponse {
            isolated: isolated.iter().map(ToString::to_string).collect(),
        }))
    }
}
