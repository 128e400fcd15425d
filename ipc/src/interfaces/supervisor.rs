//! The supervisor's interface: liveness and the restart bookkeeping it keeps for the system.

use crate::abi;

crate::interface! {
    /// Calls to the supervisor, the component that restarts faulted components.
    pub interface SupervisorInterface {
        id = abi::interface::SUPERVISOR;
        name = "supervisor";
        server = SupervisorServer;

        /// What the supervisor is asked.
        request SupervisorRequest {
            /// Is the supervisor alive? Answered with [`SupervisorReply::Pong`].
            Ping {
                /// Echoed back, so the caller can match the answer to its question.
                nonce: u32,
            } => ping,
            /// The supervisor's counters; answered with [`SupervisorReply::Status`].
            Status => status,
        }

        /// What the supervisor answers.
        reply SupervisorReply {
            /// The answer to [`SupervisorRequest::Ping`].
            Pong {
                /// The ping's nonce.
                nonce: u32,
            },
            /// The answer to [`SupervisorRequest::Status`].
            Status {
                /// Component restarts since boot.
                restarts: u32,
                /// Component faults reported to the supervisor since boot.
                components_faulted: u32,
            },
        }
    }
}
