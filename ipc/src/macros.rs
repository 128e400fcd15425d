//! The [`interface!`] macro and the helper that defines and describes its message types.
//!
//! Why a `macro_rules!` that parses the definitions instead of a plain `#[derive]`: the schema
//! hash must cover the messages' *structure* and nothing else. The macro sees every variant,
//! field and type, so it can both emit the types (with the derives postcard and the tests need)
//! and turn the same tokens into the schema text, minus documentation. Only doc attributes are
//! accepted on the types, variants and fields: an attribute like `#[serde(rename)]` or
//! `#[serde(skip)]` would change the wire format without changing the hash.

/// Defines an IPC interface: its request and reply enums, the types they use, and a unit struct
/// implementing [`Interface`](crate::Interface).
///
/// ```
/// hv_ipc::interface! {
///     /// A counter service.
///     pub interface CounterInterface {
///         id = 0x7f00;
///         name = "counter";
///
///         /// What a client asks.
///         request CounterRequest {
///             /// Add to the counter.
///             Add { amount: u32, how: Saturation },
///             /// Read it.
///             Read,
///         }
///
///         /// What the counter answers.
///         reply CounterReply {
///             /// The value after the operation.
///             Value(u64),
///         }
///
///         /// What to do at the top.
///         enum Saturation { Wrap, Saturate }
///     }
/// }
///
/// use hv_ipc::Interface;
/// assert_eq!(CounterInterface::NAME, "counter");
/// assert!(CounterInterface::MAX_REQUEST <= hv_ipc::abi::MESSAGE_MAX);
/// ```
///
/// The request and reply are enums; after them come any number of `enum` or `struct` (named
/// fields) definitions the messages use. Variants may be unit, tuple or struct-like. Each type
/// derives `Serialize`, `Deserialize`, `MaxSize`, `Debug`, `Clone` and `PartialEq`; the only
/// attributes accepted are doc comments (see below).
///
/// The expansion refers to the `serde` and `postcard` crates by name (their derives do), so a
/// crate using the macro outside `hv-ipc` needs both as dependencies, postcard with
/// `experimental-derive`.
///
/// # Schema hash
///
/// [`SCHEMA`](crate::Interface::SCHEMA) is the `stringify!` of the whole definition with the
/// documentation left out — name, request, reply, every type they use, and the
/// [`RemoteError`](crate::RemoteError) every reply can carry — and
/// [`SCHEMA_HASH`](crate::Interface::SCHEMA_HASH) is its FNV-1a 64
/// ([`schema_hash`](crate::schema_hash)), computed at compile time. So any change to the messages (a variant
/// added, a field's type or order changed, a variant renamed) changes the hash, while rewording a
/// doc comment does not. The kernel checks the hash at hot-swap: a component built against
/// another definition would misread every message. Types defined outside the macro are covered
/// only by their name, which is why the types the messages use belong in the definition.
///
/// The id is not part of the schema: it is the key the hash is checked under.
///
/// Attributes other than doc comments are refused, since they could change the encoding behind
/// the hash's back:
///
/// ```compile_fail
/// hv_ipc::interface! {
///     pub interface Sneaky {
///         id = 0x7f01;
///         name = "sneaky";
///         request SneakyRequest { Get { #[serde(skip)] secret: u32 } }
///         reply SneakyReply { Value(u32) }
///     }
/// }
/// ```
///
/// # Size
///
/// It is checked at compile time that the largest request and reply fit
/// [`abi::MESSAGE_MAX`](crate::abi::MESSAGE_MAX):
///
/// ```compile_fail,E0080
/// hv_ipc::interface! {
///     pub interface Bulky {
///         id = 0x7f02;
///         name = "bulky";
///         request BulkyRequest { Put { data: [u64; 30] } }
///         reply BulkyReply { Done }
///     }
/// }
/// ```
#[macro_export]
macro_rules! interface {
    (
        $(#[doc = $doc:literal])*
        $vis:vis interface $interface:ident {
            id = $id:expr;
            name = $name:literal;

            $(#[doc = $request_doc:literal])*
            request $request:ident { $($request_body:tt)* }

            $(#[doc = $reply_doc:literal])*
            reply $reply:ident { $($reply_body:tt)* }

            $(
                $(#[doc = $type_doc:literal])*
                $kind:ident $type:ident { $($type_body:tt)* }
            )*
        }
    ) => {
        $crate::__ipc_type! {
            @define [$vis] [$(#[doc = $request_doc])*] enum $request { $($request_body)* }
        }
        $crate::__ipc_type! {
            @define [$vis] [$(#[doc = $reply_doc])*] enum $reply { $($reply_body)* }
        }
        $(
            $crate::__ipc_type! {
                @define [$vis] [$(#[doc = $type_doc])*] $kind $type { $($type_body)* }
            }
        )*

        $(#[doc = $doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        $vis struct $interface;

        impl $crate::Interface for $interface {
            const ID: u16 = $id;
            const NAME: &'static str = $name;
            const SCHEMA: &'static str = concat!(
                "interface ", $name, ";",
                "request ", $crate::__ipc_type!(@schema enum $request { $($request_body)* }), ";",
                "reply ", $crate::__ipc_type!(@schema enum $reply { $($reply_body)* }), ";",
                $( $crate::__ipc_type!(@schema $kind $type { $($type_body)* }), ";", )*
                "error ", $crate::__ipc_remote_error!(@with [$crate::__ipc_type] [@schema]), ";",
            );
            const SCHEMA_HASH: u64 = $crate::schema_hash(<Self as $crate::Interface>::SCHEMA);
            type Request = $request;
            type Reply = $reply;
        }

        // Checked here, where the interface is defined, rather than at its first use.
        const _: () = <$interface as $crate::Interface>::FITS_MESSAGE;
    };
}

/// Defines one message type (`@define`) or expands to its schema text (`@schema`).
///
/// Both arms take the same tokens so the type and its description cannot drift apart.
#[doc(hidden)]
#[macro_export]
macro_rules! __ipc_type {
    (
        @define [$vis:vis] [$(#[$attr:meta])*] enum $name:ident {
            $(
                $(#[doc = $variant_doc:literal])*
                $variant:ident
                $( { $( $(#[doc = $field_doc:literal])* $field:ident : $field_type:ty ),* $(,)? } )?
                $( ( $( $element_type:ty ),* $(,)? ) )?
            ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(
            $crate::__private::Serialize,
            $crate::__private::Deserialize,
            $crate::__private::MaxSize,
            Debug,
            Clone,
            PartialEq,
        )]
        $vis enum $name {
            $(
                $(#[doc = $variant_doc])*
                $variant
                $( { $( $(#[doc = $field_doc])* $field : $field_type ),* } )?
                $( ( $( $element_type ),* ) )?
            ),*
        }
    };
    (
        @define [$vis:vis] [$(#[$attr:meta])*] struct $name:ident {
            $( $(#[doc = $field_doc:literal])* $field:ident : $field_type:ty ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(
            $crate::__private::Serialize,
            $crate::__private::Deserialize,
            $crate::__private::MaxSize,
            Debug,
            Clone,
            PartialEq,
        )]
        $vis struct $name {
            $( $(#[doc = $field_doc])* pub $field : $field_type ),*
        }
    };
    (
        @schema enum $name:ident {
            $(
                $(#[doc = $variant_doc:literal])*
                $variant:ident
                $( { $( $(#[doc = $field_doc:literal])* $field:ident : $field_type:ty ),* $(,)? } )?
                $( ( $( $element_type:ty ),* $(,)? ) )?
            ),* $(,)?
        }
    ) => {
        stringify!(
            enum $name {
                $(
                    $variant
                    $( { $( $field : $field_type ),* } )?
                    $( ( $( $element_type ),* ) )?
                ),*
            }
        )
    };
    (
        @schema struct $name:ident {
            $( $(#[doc = $field_doc:literal])* $field:ident : $field_type:ty ),* $(,)?
        }
    ) => {
        stringify!(struct $name { $( $field : $field_type ),* })
    };
}
