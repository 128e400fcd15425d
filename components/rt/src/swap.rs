//! Hot-swap in the runtime: answering the kernel's lifecycle requests (`hv_ipc::lifecycle`)
//! for the component, which only says what state it keeps ([`SwapState`], and the
//! [`Server`](crate::Server) methods `export_state` / `import_state`). docs/hot-swap.md has the
//! protocol.
//!
//! - `Export`: the state is taken once, on the first page, into the runtime's hand-over
//!   buffer, then handed out page by page.
//! - `Import`: pages are gathered into the same buffer; on the last, the interface is checked
//!   (a new instance whose interface schema differs from the old one's refuses, unless it
//!   declares a migration) and the component takes the state.
//!
//! The logic is pure and host-tested; the runtime's server loop feeds it the requests and
//! carries out a test build's misbehaviour ([`Hook`]).

use hv_component_config::SwapTest;
use hv_ipc::abi::MESSAGE_MAX;
use hv_ipc::lifecycle::{
    self, LifecycleReply, LifecycleRequest, PAGE_MAX, Refusal, STATE_MAX, StateTag,
};

use crate::Server;

/// What a component keeps across a swap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapState {
    /// Nothing: a new instance starts as at boot.
    Stateless,
    /// A state, handed over as postcard bytes of the component's own type, whose shape
    /// `schema` names (`hv_ipc::schema_hash` of its definition) at `version`.
    Keeps {
        /// The state type's schema hash.
        schema: u64,
        /// Its version.
        version: u32,
    },
    /// It cannot be swapped: its state cannot be handed over (say why in the docs).
    NotSwappable,
}

/// What the runtime must do besides replying (a test build's misbehaviour, `swap-test`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// Nothing: reply.
    None,
    /// Fault now, before answering.
    Fault,
    /// Wait this many milliseconds, then reply.
    Stall(u64),
    /// Never reply.
    Hang,
}

/// How long a `slow` test build waits: past the supervisor's deadline (2 s).
pub const SLOW_MS: u64 = 3_000;

/// The runtime's hand-over state.
pub struct Lifecycle<'b> {
    buffer: &'b mut [u8],
    /// Bytes of state taken at the first export page.
    exported: usize,
    tag: StateTag,
}

impl<'b> Lifecycle<'b> {
    /// With `buffer` (at least [`STATE_MAX`] bytes) for the state.
    pub fn new(buffer: &'b mut [u8]) -> Self {
        Self {
            buffer,
            exported: 0,
            tag: StateTag {
                schema: 0,
                version: 0,
                interface: 0,
            },
        }
    }

    /// Picks up where the last request left: `kept` is [`Self::kept`] of then.
    pub fn resume(buffer: &'b mut [u8], (exported, tag): (usize, StateTag)) -> Self {
        Self {
            buffer,
            exported,
            tag,
        }
    }

    /// What must survive until the next request.
    pub fn kept(&self) -> (usize, StateTag) {
        (self.exported, self.tag)
    }

    /// Answers `request` for `server` into `reply`, returning the reply's length and what to
    /// do first. `test` is the build's `swap-test` misbehaviour, if any.
    pub fn serve<S: Server + ?Sized>(
        &mut self,
        server: &mut S,
        test: Option<SwapTest>,
        request: &[u8],
        reply: &mut [u8; MESSAGE_MAX],
    ) -> (usize, Hook) {
        let interface = own_interface(server, test);
        let (answer, hook) = match lifecycle::decode::<LifecycleRequest>(request) {
            Some(LifecycleRequest::Export { offset }) => {
                (self.export(server, offset, interface), Hook::None)
            }
            Some(LifecycleRequest::Import {
                tag,
                total,
                offset,
                bytes,
            }) => self.import(server, test, interface, tag, total, offset, bytes),
            None => (
                Answer::Reply(LifecycleReply::Refused(Refusal::State)),
                Hook::None,
            ),
        };
        let answer = match answer {
            Answer::Reply(reply) => reply,
            Answer::Page { total, start, end } => LifecycleReply::State {
                tag: self.tag,
                total,
                bytes: &self.buffer[start..end],
            },
        };
        (lifecycle::encode(&answer, reply).unwrap_or(0), hook)
    }

    fn export<S: Server + ?Sized>(
        &mut self,
        server: &mut S,
        offset: u32,
        interface: u64,
    ) -> Answer {
        if offset == 0 {
            let (schema, version) = match server.swap_state() {
                SwapState::NotSwappable => return Answer::Reply(LifecycleReply::NotSwappable),
                SwapState::Stateless => (0, 0),
                SwapState::Keeps { schema, version } => (schema, version),
            };
            let limit = self.buffer.len().min(STATE_MAX);
            let Some(len) = server.export_state(&mut self.buffer[..limit]) else {
                return Answer::Reply(LifecycleReply::NotSwappable);
            };
            self.exported = len.min(limit);
            self.tag = StateTag {
                schema,
                version,
                interface,
            };
        }
        let start = (offset as usize).min(self.exported);
        let end = (start + PAGE_MAX).min(self.exported);
        Answer::Page {
            total: self.exported as u32,
            start,
            end,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn import<S: Server + ?Sized>(
        &mut self,
        server: &mut S,
        test: Option<SwapTest>,
        interface: u64,
        tag: StateTag,
        total: u32,
        offset: u32,
        bytes: &[u8],
    ) -> (Answer, Hook) {
        let (total, offset) = (total as usize, offset as usize);
        let end = offset + bytes.len();
        if total > self.buffer.len().min(STATE_MAX) || end > total {
            return (
                Answer::Reply(LifecycleReply::Refused(Refusal::State)),
                Hook::None,
            );
        }
        self.buffer[offset..end].copy_from_slice(bytes);
        if end < total {
            return (Answer::Reply(LifecycleReply::More), Hook::None);
        }
        match test {
            Some(SwapTest::FaultAtStart) => {
                return (Answer::Reply(LifecycleReply::More), Hook::Fault);
            }
            Some(SwapTest::RefuseState) => {
                return (
                    Answer::Reply(LifecycleReply::Refused(Refusal::State)),
                    Hook::None,
                );
            }
            _ => {}
        }
        let hook = match test {
            Some(SwapTest::Slow) => Hook::Stall(SLOW_MS),
            Some(SwapTest::Hang) => Hook::Hang,
            _ => Hook::None,
        };
        if tag.interface != interface && !server.migrates_interface_from(tag.interface) {
            return (
                Answer::Reply(LifecycleReply::Refused(Refusal::Interface)),
                hook,
            );
        }
        let answer = match server.import_state(tag, &self.buffer[..total]) {
            Ok(()) => LifecycleReply::Accepted,
            Err(refusal) => LifecycleReply::Refused(refusal),
        };
        (Answer::Reply(answer), hook)
    }
}

/// An answer before it is encoded (a page borrows the buffer).
enum Answer {
    Reply(LifecycleReply<'static>),
    Page {
        total: u32,
        start: usize,
        end: usize,
    },
}

/// The schema hash of the interface this build serves (a `schema-change` test build says
/// another).
fn own_interface<S: Server + ?Sized>(server: &S, test: Option<SwapTest>) -> u64 {
    let schema = server.interface_schema();
    match test {
        Some(SwapTest::SchemaChange) => schema ^ 0x5eed_5eed_5eed_5eed,
        _ => schema,
    }
}

/// The state a stateless component takes: none (a state it cannot read is refused).
pub fn take_no_state(state: &[u8]) -> Result<(), Refusal> {
    if state.is_empty() {
        Ok(())
    } else {
        Err(Refusal::State)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component keeping a counter across swaps.
    struct Counter {
        value: u32,
        policy: SwapState,
        migrates: bool,
    }

    const SCHEMA: u64 = 0xc0ffee;

    impl Server for Counter {
        fn swap_state(&self) -> SwapState {
            self.policy
        }
        fn interface_schema(&self) -> u64 {
            0x1f
        }
        fn migrates_interface_from(&self, _old: u64) -> bool {
            self.migrates
        }
        fn export_state(&mut self, out: &mut [u8]) -> Option<usize> {
            // A big state: the value repeated, to take several pages.
            let bytes = self.value.to_le_bytes();
            for chunk in out[..1000].chunks_mut(4) {
                chunk.copy_from_slice(&bytes);
            }
            Some(1000)
        }
        fn import_state(&mut self, tag: StateTag, state: &[u8]) -> Result<(), Refusal> {
            if tag.schema != SCHEMA || state.len() != 1000 {
                return Err(Refusal::State);
            }
            self.value = u32::from_le_bytes(state[..4].try_into().unwrap());
            Ok(())
        }
    }

    fn counter(value: u32) -> Counter {
        Counter {
            value,
            policy: SwapState::Keeps {
                schema: SCHEMA,
                version: 1,
            },
            migrates: false,
        }
    }

    fn ask<'r>(
        lifecycle: &mut Lifecycle,
        server: &mut Counter,
        test: Option<SwapTest>,
        request: &LifecycleRequest,
        reply: &'r mut [u8; MESSAGE_MAX],
    ) -> (LifecycleReply<'r>, Hook) {
        let mut bytes = [0u8; MESSAGE_MAX];
        let len = lifecycle::encode(request, &mut bytes).unwrap();
        let (reply_len, hook) = lifecycle.serve(server, test, &bytes[..len], reply);
        (lifecycle::decode(&reply[..reply_len]).unwrap(), hook)
    }

    /// Exports `old`'s state page by page, as the kernel asks for it.
    fn export(old: &mut Counter) -> (StateTag, Vec<u8>) {
        let mut buffer = vec![0; STATE_MAX];
        let mut lifecycle = Lifecycle::new(&mut buffer);
        let mut state = Vec::new();
        loop {
            let mut reply = [0; MESSAGE_MAX];
            let request = LifecycleRequest::Export {
                offset: state.len() as u32,
            };
            let (answer, _) = ask(&mut lifecycle, old, None, &request, &mut reply);
            let LifecycleReply::State { tag, total, bytes } = answer else {
                panic!("{answer:?}");
            };
            state.extend_from_slice(bytes);
            if state.len() == total as usize {
                return (tag, state);
            }
        }
    }

    /// Imports `state` into `new`; the last page's answer and hook.
    fn import(
        new: &mut Counter,
        test: Option<SwapTest>,
        tag: StateTag,
        state: &[u8],
    ) -> (LifecycleReply<'static>, Hook) {
        let mut buffer = vec![0; STATE_MAX];
        let mut lifecycle = Lifecycle::new(&mut buffer);
        let mut offset = 0;
        loop {
            let end = (offset + PAGE_MAX).min(state.len());
            let request = LifecycleRequest::Import {
                tag,
                total: state.len() as u32,
                offset: offset as u32,
                bytes: &state[offset..end],
            };
            let mut reply = [0; MESSAGE_MAX];
            let (answer, hook) = ask(&mut lifecycle, new, test, &request, &mut reply);
            if end == state.len() {
                let owned = match answer {
                    LifecycleReply::Accepted => LifecycleReply::Accepted,
                    LifecycleReply::Refused(refusal) => LifecycleReply::Refused(refusal),
                    LifecycleReply::More => LifecycleReply::More,
                    other => panic!("{other:?}"),
                };
                return (owned, hook);
            }
            assert_eq!(answer, LifecycleReply::More);
            offset = end;
        }
    }

    #[test]
    fn state_goes_from_the_old_instance_to_the_new_one_in_pages() {
        let (tag, state) = export(&mut counter(42));
        assert_eq!(state.len(), 1000);
        assert_eq!(
            tag,
            StateTag {
                schema: SCHEMA,
                version: 1,
                interface: 0x1f
            }
        );
        let mut new = counter(0);
        assert_eq!(
            import(&mut new, None, tag, &state),
            (LifecycleReply::Accepted, Hook::None)
        );
        assert_eq!(new.value, 42);
    }

    #[test]
    fn a_component_that_is_not_swappable_says_so() {
        let mut old = counter(1);
        old.policy = SwapState::NotSwappable;
        let mut buffer = vec![0; STATE_MAX];
        let mut lifecycle = Lifecycle::new(&mut buffer);
        let mut reply = [0; MESSAGE_MAX];
        let request = LifecycleRequest::Export { offset: 0 };
        let (answer, _) = ask(&mut lifecycle, &mut old, None, &request, &mut reply);
        assert_eq!(answer, LifecycleReply::NotSwappable);
    }

    #[test]
    fn another_interface_is_refused_unless_migrated() {
        let (tag, state) = export(&mut counter(7));
        let mut new = counter(0);
        let (answer, _) = import(&mut new, Some(SwapTest::SchemaChange), tag, &state);
        assert_eq!(answer, LifecycleReply::Refused(Refusal::Interface));
        assert_eq!(new.value, 0, "nothing was taken");
        new.migrates = true;
        let (answer, _) = import(&mut new, Some(SwapTest::SchemaChange), tag, &state);
        assert_eq!(answer, LifecycleReply::Accepted);
        assert_eq!(new.value, 7);
    }

    #[test]
    fn test_builds_misbehave_as_asked() {
        let (tag, state) = export(&mut counter(7));
        let (answer, hook) = import(&mut counter(0), Some(SwapTest::RefuseState), tag, &state);
        assert_eq!(
            (answer, hook),
            (LifecycleReply::Refused(Refusal::State), Hook::None)
        );
        let (_, hook) = import(&mut counter(0), Some(SwapTest::FaultAtStart), tag, &state);
        assert_eq!(hook, Hook::Fault);
        let (answer, hook) = import(&mut counter(0), Some(SwapTest::Slow), tag, &state);
        assert_eq!(
            (answer, hook),
            (LifecycleReply::Accepted, Hook::Stall(SLOW_MS))
        );
        let (_, hook) = import(&mut counter(0), Some(SwapTest::Hang), tag, &state);
        assert_eq!(hook, Hook::Hang);
    }

    #[test]
    fn a_state_of_another_schema_is_refused_by_the_component() {
        let (mut tag, state) = export(&mut counter(7));
        tag.schema ^= 1;
        let (answer, _) = import(&mut counter(0), None, tag, &state);
        assert_eq!(answer, LifecycleReply::Refused(Refusal::State));
    }

    #[test]
    fn malformed_requests_are_refused() {
        let mut buffer = vec![0; STATE_MAX];
        let mut lifecycle = Lifecycle::new(&mut buffer);
        let mut reply = [0; MESSAGE_MAX];
        let (len, _) = lifecycle.serve(&mut counter(0), None, &[0xff, 0xff, 0xff], &mut reply);
        assert_eq!(
            lifecycle::decode::<LifecycleReply>(&reply[..len]),
            Some(LifecycleReply::Refused(Refusal::State))
        );
        // A page past the total it names.
        let request = LifecycleRequest::Import {
            tag: StateTag {
                schema: SCHEMA,
                version: 1,
                interface: 0x1f,
            },
            total: 4,
            offset: 2,
            bytes: &[1, 2, 3],
        };
        let (answer, _) = ask(&mut lifecycle, &mut counter(0), None, &request, &mut reply);
        assert_eq!(answer, LifecycleReply::Refused(Refusal::State));
    }

    #[test]
    fn stateless_components_take_only_an_empty_state() {
        assert_eq!(take_no_state(&[]), Ok(()));
        assert_eq!(take_no_state(&[1]), Err(Refusal::State));
    }
}
