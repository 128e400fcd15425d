//! The `interface!` macro's schema hash: it follows the messages' structure and nothing else.

mod original {
    hv_ipc::interface! {
        /// A test interface.
        pub interface Counter {
            id = 0x7f00;
            name = "counter";
            server = CounterServer;
            /// Requests.
            request CounterRequest {
                /// Add.
                Add { amount: u32, mode: Mode } => add,
                /// Read.
                Read => read,
            }
            /// Replies.
            reply CounterReply {
                /// The value.
                Value(u64),
            }
            /// Overflow handling.
            enum Mode { Wrap, Saturate }
            /// An unused struct, to cover the `struct` arm.
            struct Limits { low: u32, high: u32 }
        }
    }
}

/// `original` with every doc comment rewritten, some spacing changed and the server's methods
/// renamed.
mod reworded {
    hv_ipc::interface! {
        /// The same test interface, documented differently.
        pub interface Counter {
            id = 0x7f00;
            name = "counter";
            server = CounterServer;
            /// What one asks.
            request CounterRequest {
                /// Adds `amount`.
                Add {
                    /// How much.
                    amount: u32,
                    /// At the top.
                    mode: Mode,
                } => add_to_counter,
                Read => read_counter,
            }
            reply CounterReply { Value( u64 ) }
            enum Mode {
                /// Modulo 2^32.
                Wrap,
                Saturate,
            }
            struct Limits {
                /// Lower bound.
                low: u32,
                high: u32,
            }
        }
    }
}

/// `original` with one field's type changed: same variants, different bytes on the wire.
mod retyped {
    hv_ipc::interface! {
        pub interface Counter {
            id = 0x7f00;
            name = "counter";
            server = CounterServer;
            request CounterRequest { Add { amount: u64, mode: Mode } => add, Read => read }
            reply CounterReply { Value(u64) }
            enum Mode { Wrap, Saturate }
            struct Limits { low: u32, high: u32 }
        }
    }
}

/// `original` with a supporting type's variants swapped: only the types the messages use
/// changed.
mod reordered {
    hv_ipc::interface! {
        pub interface Counter {
            id = 0x7f00;
            name = "counter";
            server = CounterServer;
            request CounterRequest { Add { amount: u32, mode: Mode } => add, Read => read }
            reply CounterReply { Value(u64) }
            enum Mode { Saturate, Wrap }
            struct Limits { low: u32, high: u32 }
        }
    }
}

/// `original` with a reply variant added.
mod extended {
    hv_ipc::interface! {
        pub interface Counter {
            id = 0x7f00;
            name = "counter";
            server = CounterServer;
            request CounterRequest { Add { amount: u32, mode: Mode } => add, Read => read }
            reply CounterReply { Value(u64), Overflowed }
            enum Mode { Wrap, Saturate }
            struct Limits { low: u32, high: u32 }
        }
    }
}

use hv_ipc::Interface;

#[test]
fn documentation_spacing_and_method_names_do_not_change_the_hash() {
    assert_eq!(
        original::Counter::SCHEMA_HASH,
        reworded::Counter::SCHEMA_HASH
    );
}

#[test]
fn structural_changes_change_the_hash() {
    let original = original::Counter::SCHEMA_HASH;
    assert_ne!(original, retyped::Counter::SCHEMA_HASH);
    assert_ne!(original, reordered::Counter::SCHEMA_HASH);
    assert_ne!(original, extended::Counter::SCHEMA_HASH);
}

#[test]
fn macro_defines_working_types() {
    use original::{CounterReply, CounterRequest, Limits, Mode};
    let request = CounterRequest::Add {
        amount: 3,
        mode: Mode::Saturate,
    };
    let mut buffer = [0; hv_ipc::abi::MESSAGE_MAX];
    let len = hv_ipc::encode_request::<original::Counter>(&request, &mut buffer).unwrap();
    assert_eq!(
        hv_ipc::decode_request::<original::Counter>(&buffer[..len]),
        Ok(request.clone())
    );
    assert_eq!(original::Counter::ID, 0x7f00);
    assert_eq!(original::Counter::NAME, "counter");
    // Tuple variants and struct fields work too.
    let reply = CounterReply::Value(u64::MAX);
    assert!(postcard::to_slice(&reply, &mut buffer).unwrap().len() < original::Counter::MAX_REPLY);
    let limits = Limits { low: 1, high: 2 };
    assert_eq!(limits.clone(), limits);
}
