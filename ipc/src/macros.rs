//! The [`interface!`] macro and the helper that defines and describes its message types.
//!
//! Why a `macro_rules!` that parses the definitions instead of a plain `#[derive]`: the schema
//! hash must cover the messages' *structure* and nothing else. The macro sees every variant,
//! field and type, so it can both emit the types (with the derives postcard and the tests need)
//! and turn the same tokens into the schema text, minus documentation. Only doc attributes are
//! accepted on the types, variants and fields: an attribute like `#[serde(rename)]` or
//! `#[serde(skip)]` would change the wire format without changing the hash.

/// Defines an IPC interface: its request and reply enums, the types they use, a unit struct
/// implementing [`Interface`](crate::Interface), and the interface's server trait.
///
/// ```
/// hv_ipc::interface! {
///     /// A counter service.
///     pub interface CounterInterface {
///         id = 0x7f00;
///         name = "counter";
///         server = CounterServer;
///
///         /// What a client asks.
///         request CounterRequest {
///             /// Add to the counter.
///             Add { amount: u32, how: Saturation } => add,
///             /// Read it.
///             Read => read,
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
/// /// A server: one method per request variant, named after the `=>`.
/// struct Counter(u64);
///
/// impl CounterServer for Counter {
///     fn add(&mut self, amount: u32, how: Saturation) -> CounterReply {
///         self.0 = match how {
///             Saturation::Wrap => self.0.wrapping_add(amount.into()),
///             Saturation::Saturate => self.0.saturating_add(amount.into()),
///         };
///         CounterReply::Value(self.0)
///     }
///
///     fn read(&mut self) -> CounterReply {
///         CounterReply::Value(self.0)
///     }
/// }
///
/// use hv_ipc::Interface;
/// assert_eq!(CounterInterface::NAME, "counter");
/// assert!(CounterInterface::MAX_REQUEST <= hv_ipc::abi::MESSAGE_MAX);
///
/// // A call's bytes in, the reply's bytes out (see `hv_ipc::dispatch`).
/// let mut request = [0; hv_ipc::abi::MESSAGE_MAX];
/// let len = hv_ipc::encode_request::<CounterInterface>(&CounterRequest::Read, &mut request).unwrap();
/// let mut reply = [0; hv_ipc::abi::MESSAGE_MAX];
/// let reply_len = hv_ipc::dispatch::<CounterInterface, _>(
///     &mut Counter(7),
///     CounterInterface::ID,
///     &request[..len],
///     &mut reply,
/// );
/// assert_eq!(
///     hv_ipc::decode_reply::<CounterInterface>(&reply[..reply_len]),
///     Ok(Ok(CounterReply::Value(7)))
/// );
/// ```
///
/// The request and reply are enums; after them come any number of `enum` or `struct` (named
/// fields) definitions the messages use. Reply variants and the other types' variants may be
/// unit, tuple or struct-like; request variants are unit or struct-like, each followed by
/// `=> method`, since their fields become the method's named parameters. Each type derives
/// `Serialize`, `Deserialize`, `MaxSize`, `Debug`, `Clone` and `PartialEq`, and implements
/// [`Codec`](crate::codec::Codec) (what encodes it) and
/// [`Generate`](crate::generate::Generate) (for tests); the only attributes accepted are doc
/// comments (see below).
///
/// The expansion refers to the `serde` and `postcard` crates by name (their derives do), so a
/// crate using the macro outside `hv-ipc` needs both as dependencies, postcard with
/// `experimental-derive`.
///
/// # Name
///
/// `name` is how manifests and logs call the interface, in kebab-case (`guest-trap`); anything
/// else fails the build:
///
/// ```compile_fail,E0080
/// hv_ipc::interface! {
///     pub interface Shouty {
///         id = 0x7f03;
///         name = "Shouty_Name";
///         server = ShoutyServer;
///         request ShoutyRequest { Get => get }
///         reply ShoutyReply { Value(u32) }
///     }
/// }
/// ```
///
/// # Server
///
/// `server = Name;` names the trait servers implement: one method per request variant, named by
/// the `=> method` after the variant, taking the variant's fields (in order, by value) and
/// returning the reply. The macro also implements [`ServedBy`](crate::ServedBy) (a request
/// value to a method call) and [`Dispatch`](crate::Dispatch) (a call's bytes to a reply's bytes)
/// for every type implementing the trait, so a component serves the interface with
/// [`dispatch`](crate::dispatch) and never matches on requests itself. Adding a request variant
/// adds a method, and every server that lacks it fails to build, unless the variant says
/// `=> method else answer`: then the method is provided and answers `answer`, for servers that
/// never take that request (a component the manifest routes only SMCCC calls to keeps the
/// `guest-trap` interface's answers for MMIO and stage-2 faults, what the hardware does for an
/// access nothing serves). The default is not part of the schema: it never goes on the wire.
///
/// A request variant's fields are the method's parameters, so they need names: a tuple variant
/// in a request is refused.
///
/// ```compile_fail
/// hv_ipc::interface! {
///     pub interface Positional {
///         id = 0x7f04;
///         name = "positional";
///         server = PositionalServer;
///         request PositionalRequest { Put(u32) => put }
///         reply PositionalReply { Done }
///     }
/// }
/// ```
///
/// # Schema hash
///
/// [`SCHEMA`](crate::Interface::SCHEMA) is the `stringify!` of the whole definition with the
/// documentation and the method names left out — name, request, reply, every type they use, and
/// the [`RemoteError`](crate::RemoteError) every reply can carry — and
/// [`SCHEMA_HASH`](crate::Interface::SCHEMA_HASH) is its FNV-1a 64
/// ([`schema_hash`](crate::schema_hash)), computed at compile time. So any change to the
/// messages (a variant added, a field's type or order changed, a variant renamed) changes the
/// hash, while rewording a doc comment or renaming a server method does not. Hot-swap is to
/// check the hash (it is not built yet): a component built against another definition would
/// misread every message. Types defined outside the macro are covered only by their name, which
/// is why the types the messages use belong in the definition.
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
///         server = SneakyServer;
///         request SneakyRequest { Get { #[serde(skip)] secret: u32 } => get }
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
///         server = BulkyServer;
///         request BulkyRequest { Put { data: [u64; 30] } => put }
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
            server = $server:ident;

            $(#[doc = $request_doc:literal])*
            request $request:ident {
                $(
                    $(#[doc = $variant_doc:literal])*
                    $variant:ident
                    $( {
                        $( $(#[doc = $field_doc:literal])* $field:ident : $field_type:ty ),* $(,)?
                    } )?
                    => $method:ident $( else $default:expr )?
                ),* $(,)?
            }

            $(#[doc = $reply_doc:literal])*
            reply $reply:ident { $($reply_body:tt)* }

            $(
                $(#[doc = $type_doc:literal])*
                $kind:ident $type:ident { $($type_body:tt)* }
            )*
        }
    ) => {
        $crate::__ipc_type! {
            @define [$vis] [$(#[doc = $request_doc])*] enum $request {
                $(
                    $(#[doc = $variant_doc])*
                    $variant $( { $( $(#[doc = $field_doc])* $field : $field_type ),* } )?
                ),*
            }
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
                "request ",
                $crate::__ipc_type!(@schema enum $request {
                    $( $variant $( { $( $field : $field_type ),* } )? ),*
                }),
                ";",
                "reply ", $crate::__ipc_type!(@schema enum $reply { $($reply_body)* }), ";",
                $( $crate::__ipc_type!(@schema $kind $type { $($type_body)* }), ";", )*
                "error ", $crate::__ipc_remote_error!(@with [$crate::__ipc_type] [@schema]), ";",
            );
            const SCHEMA_HASH: u64 = $crate::schema_hash(<Self as $crate::Interface>::SCHEMA);
            type Request = $request;
            type Reply = $reply;
        }

        #[doc = concat!(
            "The server side of [`", stringify!($interface), "`]: one method per [`",
            stringify!($request), "`] variant, taking its fields and returning the reply.",
        )]
        #[doc = ""]
        #[doc = concat!(
            "Serve it with `hv_ipc::dispatch::<", stringify!($interface), ", _>`, which decodes ",
            "a call, calls the method and encodes its reply.",
        )]
        $vis trait $server {
            $(
                $crate::__ipc_server_method! {
                    [$(#[doc = $variant_doc])*
                    #[doc = ""]
                    #[doc = concat!("Serves [`", stringify!($request), "::", stringify!($variant), "`].")]]
                    $method [$( $( $field : $field_type ),* )?] -> $reply [$( $default )?]
                }
            )*
        }

        impl<S: $server + ?Sized> $crate::ServedBy<S> for $interface {
            fn serve(server: &mut S, request: $request) -> $reply {
                match request {
                    $(
                        $request::$variant $( { $( $field ),* } )? =>
                            <S as $server>::$method(server $( $( , $field )* )?),
                    )*
                }
            }
        }

        impl<S: $server + ?Sized> $crate::Dispatch<S> for $interface {
            fn dispatch(
                server: &mut S,
                interface: u16,
                request: &[u8],
                reply: &mut [u8],
            ) -> Option<usize> {
                $crate::dispatch_interface::<Self, S>(server, interface, request, reply)
            }
        }

        // Checked here, where the interface is defined, rather than at its first use.
        const _: () = <$interface as $crate::Interface>::FITS_MESSAGE;
        const _: () = assert!(
            $crate::__private::is_kebab_case($name),
            "an interface's name must be kebab-case (lower-case words joined by '-')"
        );
    };
}

/// Whether `name` is kebab-case: lower-case ASCII words (letters, digits) joined by single
/// hyphens, starting with a letter.
#[doc(hidden)]
pub const fn is_kebab_case(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || !bytes[0].is_ascii_lowercase() || bytes[bytes.len() - 1] == b'-' {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let hyphen_ok = byte == b'-' && bytes[index - 1] != b'-';
        if !(byte.is_ascii_lowercase() || byte.is_ascii_digit() || hyphen_ok) {
            return false;
        }
        index += 1;
    }
    true
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

        impl $crate::codec::Codec for $name {
            #[inline]
            fn encode(
                &self,
                out: &mut $crate::codec::Writer<'_>,
            ) -> ::core::result::Result<(), $crate::Error> {
                // A fieldless twin of the enum, for each variant's index in declaration order.
                #[allow(dead_code, non_camel_case_types, clippy::enum_variant_names)]
                enum Index { $($variant),* }
                match self {
                    $(
                        $name::$variant { $( $( $field, )* )? .. } => {
                            out.varint(Index::$variant as u64)?;
                            $( $( $crate::codec::Codec::encode($field, out)?; )* )?
                            $( $crate::__ipc_encode_elements!(
                                out, self, $name::$variant, [$( $element_type ),*]
                            ); )?
                            ::core::result::Result::Ok(())
                        }
                    )*
                }
            }

            #[inline]
            fn decode(
                input: &mut $crate::codec::Reader<'_>,
            ) -> ::core::result::Result<Self, $crate::Error> {
                #[allow(dead_code, non_camel_case_types, clippy::enum_variant_names)]
                enum Index { $($variant),* }
                let index = input.variant()?;
                $(
                    if index == Index::$variant as u32 {
                        return ::core::result::Result::Ok($name::$variant
                            $( { $( $field: $crate::codec::Codec::decode(input)? ),* } )?
                            $( ( $( <$element_type as $crate::codec::Codec>::decode(input)? ),* ) )?
                        );
                    }
                )*
                ::core::result::Result::Err($crate::Error::Malformed)
            }
        }

        impl $name {
            /// The variant's name, for logs and refusals.
            pub const fn variant_name(&self) -> &'static str {
                match self {
                    $( Self::$variant { .. } => stringify!($variant), )*
                }
            }
        }

        impl $crate::generate::Generate for $name {
            const VARIANTS: usize = [$(stringify!($variant)),*].len();

            fn generate(variant: usize, entropy: &mut $crate::generate::Entropy<'_>) -> Self {
                let constructors: &[fn(&mut $crate::generate::Entropy<'_>) -> Self] = &[$(
                    |entropy| {
                        let _ = &entropy;
                        $name::$variant
                        $( { $( $field: $crate::generate::Generate::generate(
                            entropy.word() as usize,
                            entropy,
                        ) ),* } )?
                        $( ( $( <$element_type as $crate::generate::Generate>::generate(
                            entropy.word() as usize,
                            entropy,
                        ) ),* ) )?
                    }
                ),*];
                constructors[variant % constructors.len()](entropy)
            }
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

        impl $crate::codec::Codec for $name {
            #[inline]
            fn encode(
                &self,
                out: &mut $crate::codec::Writer<'_>,
            ) -> ::core::result::Result<(), $crate::Error> {
                let _ = &out;
                $( $crate::codec::Codec::encode(&self.$field, out)?; )*
                ::core::result::Result::Ok(())
            }

            #[inline]
            fn decode(
                input: &mut $crate::codec::Reader<'_>,
            ) -> ::core::result::Result<Self, $crate::Error> {
                let _ = &input;
                ::core::result::Result::Ok($name {
                    $( $field: $crate::codec::Codec::decode(input)? ),*
                })
            }
        }

        impl $crate::generate::Generate for $name {
            fn generate(_variant: usize, entropy: &mut $crate::generate::Entropy<'_>) -> Self {
                let _ = &entropy;
                $name {
                    $( $field: $crate::generate::Generate::generate(
                        entropy.word() as usize,
                        entropy,
                    ) ),*
                }
            }
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

/// Encodes the elements of tuple variant `$variant` of `$value` into `$out` (a statement
/// returning the error early): names each element from a fixed list, since a `macro_rules!`
/// cannot make names of its own. Up to eight elements.
#[doc(hidden)]
#[macro_export]
macro_rules! __ipc_encode_elements {
    ($out:ident, $value:expr, $($variant:ident)::+, [$($element_type:ty),*]) => {
        $crate::__ipc_encode_elements!(
            @name $out, $value, [$($variant)::+], [$($element_type),*], [],
            [element0 element1 element2 element3 element4 element5 element6 element7]
        )
    };
    (@name $out:ident, $value:expr, [$($variant:ident)::+], [$first:ty $(, $rest:ty)*],
        [$($named:ident)*], [$next:ident $($spare:ident)*]) => {
        $crate::__ipc_encode_elements!(
            @name $out, $value, [$($variant)::+], [$($rest),*], [$($named)* $next], [$($spare)*]
        )
    };
    (@name $out:ident, $value:expr, [$($variant:ident)::+], [], [$($named:ident)*],
        [$($spare:ident)*]) => {
        if let $($variant)::+( $($named),* ) = $value {
            $( $crate::codec::Codec::encode($named, $out)?; )*
        }
    };
}

/// One method of a server trait: required, or (`=> method else answer` in the interface)
/// provided, answering `answer` for a server that never takes that request (a component the
/// manifest routes only some traps to).
#[doc(hidden)]
#[macro_export]
macro_rules! __ipc_server_method {
    ([$($attr:tt)*] $method:ident [$( $field:ident : $field_type:ty ),*] -> $reply:ty []) => {
        $($attr)*
        #[allow(clippy::too_many_arguments)]
        fn $method(&mut self $( , $field : $field_type )*) -> $reply;
    };
    ([$($attr:tt)*] $method:ident [$( $field:ident : $field_type:ty ),*] -> $reply:ty [$default:expr]) => {
        $($attr)*
        #[doc = ""]
        #[doc = concat!("Provided: answers `", stringify!($default), "`.")]
        #[allow(clippy::too_many_arguments, unused_variables)]
        fn $method(&mut self $( , $field : $field_type )*) -> $reply {
            $default
        }
    };
}
