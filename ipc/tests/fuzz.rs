//! Every decoder fed arbitrary bytes: an error or a message, never a panic. And encoding any
//! message round-trips within the interface's bounds.
//!
//! The bytes are postcard's: every message encodes as the `postcard` crate encodes it, and any
//! bytes decode (or fail to) as they do there.
//!
//! The interfaces come from `for_each_interface!` and the messages from `Generate`, which the
//! `interface!` macro implements for every message type: every interface and every request and
//! reply variant is covered, and a new one is covered without a change here.

use hv_ipc::abi::MESSAGE_MAX;
use hv_ipc::generate::{Entropy, Generate};
use hv_ipc::{
    Error, Interface, RemoteError, WireReply, decode_reply, decode_request, encode_reply,
    encode_request, for_each_interface, try_serve,
};
use proptest::prelude::*;

/// Runs every decoder of `I` on `bytes`, and `try_serve` (refusing whatever decodes), whose
/// reply must always decode.
fn decode_everything<I: Interface>(bytes: &[u8])
where
    I::Request: PartialEq + core::fmt::Debug,
    I::Reply: PartialEq + core::fmt::Debug,
{
    let request = decode_request::<I>(bytes);
    assert_eq!(request, postcard_decode(bytes), "request {bytes:?}");
    assert_eq!(
        decode_reply::<I>(bytes),
        postcard_decode(bytes),
        "reply {bytes:?}"
    );

    let mut reply = [0; MESSAGE_MAX];
    let mut handled = false;
    let len = try_serve::<I>(bytes, &mut reply, |_| {
        handled = true;
        Err(RemoteError::Busy)
    });
    assert_eq!(handled, request.is_ok());
    let served = decode_reply::<I>(&reply[..len]).expect("serve's reply must decode");
    let expected = if request.is_ok() {
        RemoteError::Busy
    } else {
        RemoteError::MalformedRequest
    };
    assert_eq!(served.err(), Some(expected));
}

/// What the `postcard` crate makes of `bytes`: `hv_ipc`'s decoders must agree, errors included.
fn postcard_decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok(_) => Err(Error::TrailingBytes),
        Err(postcard::Error::DeserializeUnexpectedEnd) => Err(Error::Truncated),
        Err(_) => Err(Error::Malformed),
    }
}

fn decode_with_every_interface(bytes: &[u8]) {
    macro_rules! decode {
        ($($interface:path),* $(,)?) => { $( decode_everything::<$interface>(bytes); )* };
    }
    for_each_interface!(decode);
}

/// Something to do with every interface's messages, whatever their types.
trait MessageVisitor {
    fn visit<I>(&mut self)
    where
        I: Interface,
        I::Request: Generate + PartialEq + core::fmt::Debug,
        I::Reply: Generate + PartialEq + core::fmt::Debug;
}

fn visit_every_interface(visitor: &mut impl MessageVisitor) {
    macro_rules! visit {
        ($($interface:path),* $(,)?) => { $( visitor.visit::<$interface>(); )* };
    }
    for_each_interface!(visit);
}

/// The encodings of one message of every request and reply variant (and every error in place of
/// a reply) of every interface, with fields drawn from `entropy`, each with its interface's id.
fn every_encoding(entropy: &[u64]) -> Vec<(u16, Vec<u8>)> {
    struct Encode<'a> {
        entropy: Entropy<'a>,
        encodings: Vec<(u16, Vec<u8>)>,
    }
    impl MessageVisitor for Encode<'_> {
        fn visit<I>(&mut self)
        where
            I: Interface,
            I::Request: Generate + PartialEq + core::fmt::Debug,
            I::Reply: Generate + PartialEq + core::fmt::Debug,
        {
            let mut buffer = [0; MESSAGE_MAX];
            for variant in 0..I::Request::VARIANTS {
                let request = I::Request::generate(variant, &mut self.entropy);
                let len = encode_request::<I>(&request, &mut buffer).unwrap();
                assert_eq!(postcard::to_allocvec(&request).unwrap(), &buffer[..len]);
                self.encodings.push((I::ID, buffer[..len].to_vec()));
            }
            for variant in 0..WireReply::<I::Reply>::VARIANTS {
                let reply = WireReply::<I::Reply>::generate(variant, &mut self.entropy);
                let len = encode_reply::<I>(&reply, &mut buffer).unwrap();
                assert_eq!(postcard::to_allocvec(&reply).unwrap(), &buffer[..len]);
                self.encodings.push((I::ID, buffer[..len].to_vec()));
            }
        }
    }
    let mut encode = Encode {
        entropy: Entropy::new(entropy),
        encodings: Vec::new(),
    };
    visit_every_interface(&mut encode);
    encode.encodings
}

/// Every request and reply variant of every interface, with fields drawn from `entropy`,
/// survives encoding and decoding within the interface's bounds.
fn round_trip_every_variant(entropy: &[u64]) {
    struct RoundTrip<'a>(Entropy<'a>);
    impl MessageVisitor for RoundTrip<'_> {
        fn visit<I>(&mut self)
        where
            I: Interface,
            I::Request: Generate + PartialEq + core::fmt::Debug,
            I::Reply: Generate + PartialEq + core::fmt::Debug,
        {
            let mut buffer = [0; MESSAGE_MAX];
            for variant in 0..I::Request::VARIANTS {
                let request = I::Request::generate(variant, &mut self.0);
                let len = encode_request::<I>(&request, &mut buffer).unwrap();
                assert!(len <= I::MAX_REQUEST, "{request:?} takes {len} bytes");
                assert_eq!(decode_request::<I>(&buffer[..len]), Ok(request));
            }
            for variant in 0..WireReply::<I::Reply>::VARIANTS {
                let reply = WireReply::<I::Reply>::generate(variant, &mut self.0);
                let len = encode_reply::<I>(&reply, &mut buffer).unwrap();
                assert!(len <= I::MAX_REPLY, "{reply:?} takes {len} bytes");
                assert_eq!(decode_reply::<I>(&buffer[..len]), Ok(reply));
            }
        }
    }
    visit_every_interface(&mut RoundTrip(Entropy::new(entropy)));
}

#[test]
fn every_variant_round_trips_with_its_largest_values() {
    round_trip_every_variant(&[u64::MAX]);
    round_trip_every_variant(&[0]);
}

#[test]
fn generated_messages_reach_every_variant() {
    // A reply is Ok or Err, and within each every variant: per interface, requests + replies +
    // errors encodings.
    macro_rules! count {
        ($($interface:path),* $(,)?) => {
            0 $( + <<$interface as Interface>::Request as Generate>::VARIANTS
                 + <<$interface as Interface>::Reply as Generate>::VARIANTS
                 + <RemoteError as Generate>::VARIANTS )*
        };
    }
    let mut distinct = every_encoding(&[1, 2, 3]);
    assert_eq!(distinct.len(), for_each_interface!(count));
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        for_each_interface!(count),
        "two variants of an interface encoded alike"
    );
}

proptest! {
    #[test]
    fn random_bytes_never_panic_a_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        decode_with_every_interface(&bytes);
    }

    /// Random bytes rarely get past the first byte; valid messages of every variant with bytes
    /// flipped or cut reach deeper into the decoders.
    #[test]
    fn damaged_messages_never_panic_a_decoder(
        entropy in proptest::collection::vec(any::<u64>(), 1..32),
        cut in 0..MESSAGE_MAX,
        flips in proptest::collection::vec((0..MESSAGE_MAX, any::<u8>()), 0..4),
    ) {
        for (_, mut bytes) in every_encoding(&entropy) {
            let len = bytes.len();
            for (at, value) in &flips {
                if let Some(byte) = bytes.get_mut(at % len.max(1)) {
                    *byte ^= value;
                }
            }
            bytes.truncate(cut.min(len));
            decode_with_every_interface(&bytes);
        }
    }

    #[test]
    fn every_variant_round_trips(entropy in proptest::collection::vec(any::<u64>(), 1..32)) {
        round_trip_every_variant(&entropy);
    }
}
