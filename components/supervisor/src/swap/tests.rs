use super::*;
use proptest::prelude::*;

const STAGING: usize = 4096;

/// Component 0 is the supervisor; vm-manager's region is larger than the staging buffer,
/// mem-protect's smaller.
const TARGETS: [Target<'static>; 3] = [
    Target {
        name: "supervisor",
        region_start: 0x4000_0000,
        region_end: 0x4010_0000,
    },
    Target {
        name: "vm-manager",
        region_start: 0x4010_0000,
        region_end: 0x4010_2000,
    },
    Target {
        name: "mem-protect",
        region_start: 0x4010_2000,
        region_end: 0x4010_2800,
    },
];
const VM_MANAGER: usize = 1;

fn running(index: usize) -> u64 {
    0x1000 + index as u64
}

fn header(image: &[u8]) -> ImageHeader<'static> {
    ImageHeader {
        component: "vm-manager",
        region_start: TARGETS[VM_MANAGER].region_start,
        region_end: TARGETS[VM_MANAGER].region_end,
        entry: TARGETS[VM_MANAGER].region_start + 8.min(image.len() as u64 - 1),
        image_len: image.len() as u32,
        image_crc: image_crc(image),
        build_id: build_id(image),
        compressed: false,
        sent_len: image.len() as u32,
    }
}

fn image(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 256) as u8).collect()
}

fn handle(receiver: &mut Receiver, request: Request) -> Action {
    receiver.handle(request, &TARGETS, running)
}

fn refusal(reason: &'static str) -> Action {
    Action::Reply(Response::Refused { reason })
}

/// Sends `image` in CHUNK_MAX pieces, checking each answer.
fn send(receiver: &mut Receiver, image: &[u8]) {
    let mut offset = 0;
    for bytes in image.chunks(CHUNK_MAX) {
        let next = offset + bytes.len() as u32;
        assert_eq!(
            handle(receiver, Request::Chunk { offset, bytes }),
            Action::Reply(Response::Received { next })
        );
        offset = next;
    }
}

fn begin_with(change: impl FnOnce(&mut ImageHeader<'static>)) -> Action {
    let mut staging = [0; STAGING];
    let mut receiver = Receiver::new(&mut staging, 0);
    let mut header = header(&image(1000));
    change(&mut header);
    handle(&mut receiver, Request::Begin(header))
}

/// A receiver with `image` committed.
fn committed<'s>(staging: &'s mut [u8], image: &[u8]) -> Receiver<'s> {
    let mut receiver = Receiver::new(staging, 0);
    handle(&mut receiver, Request::Begin(header(image)));
    send(&mut receiver, image);
    assert!(matches!(
        handle(&mut receiver, Request::Commit),
        Action::Swap(_)
    ));
    receiver
}

#[test]
fn a_good_header_is_ready_with_the_running_build() {
    assert_eq!(
        begin_with(|_| {}),
        Action::Reply(Response::Ready {
            running_build: running(VM_MANAGER)
        })
    );
}

#[test]
fn begin_refuses_unknown_names_and_the_supervisor() {
    assert_eq!(
        begin_with(|header| header.component = "vm-mangler"),
        refusal("no component has that name")
    );
    assert_eq!(
        begin_with(|header| {
            header.component = "supervisor";
            header.region_start = TARGETS[0].region_start;
            header.region_end = TARGETS[0].region_end;
            header.entry = TARGETS[0].region_start;
        }),
        refusal("the supervisor carries out swaps and cannot replace itself")
    );
}

#[test]
fn begin_refuses_another_region() {
    let other = refusal("the image was linked for another region");
    assert_eq!(begin_with(|header| header.region_start += 0x1000), other);
    assert_eq!(begin_with(|header| header.region_end += 0x1000), other);
    assert_eq!(
        begin_with(|header| {
            header.component = "mem-protect";
        }),
        other
    );
}

#[test]
fn begin_refuses_an_entry_outside_the_region_or_image() {
    let outside = refusal("the entry point is outside the region");
    let region = TARGETS[VM_MANAGER];
    assert_eq!(
        begin_with(|header| header.entry = region.region_end),
        outside
    );
    assert_eq!(
        begin_with(|header| header.entry = region.region_start - 4),
        outside
    );
    assert_eq!(begin_with(|header| header.entry = 0), outside);
    assert_eq!(
        begin_with(|header| header.entry = region.region_start + 1000),
        refusal("the entry point is outside the image")
    );
    assert!(matches!(
        begin_with(|header| header.entry = region.region_start + 999),
        Action::Reply(Response::Ready { .. })
    ));
}

#[test]
fn a_compressed_image_is_inflated_at_the_commit() {
    let image = image(3000);
    let stream = miniz_oxide::deflate::compress_to_vec_zlib(&image, 6);
    assert!(stream.len() < image.len());
    let compressed = ImageHeader {
        compressed: true,
        sent_len: stream.len() as u32,
        ..header(&image)
    };
    let mut staging = [0; STAGING];
    let mut receiver = Receiver::new(&mut staging, 0);
    handle(&mut receiver, Request::Begin(compressed));
    send(&mut receiver, &stream);
    assert!(matches!(
        handle(&mut receiver, Request::Commit),
        Action::Swap(SwapOrder {
            image_len: 3000,
            ..
        })
    ));
    assert_eq!(receiver.image(), &image[..]);

    // A stream that does not inflate to the image's length is refused at the Commit.
    for broken in [stream[..stream.len() - 1].to_vec(), {
        let mut bad = stream.clone();
        bad[stream.len() / 2] ^= 0x55;
        bad
    }] {
        let mut staging = [0; STAGING];
        let mut receiver = Receiver::new(&mut staging, 0);
        let header = ImageHeader {
            sent_len: broken.len() as u32,
            ..compressed
        };
        handle(&mut receiver, Request::Begin(header));
        send(&mut receiver, &broken);
        let commit = handle(&mut receiver, Request::Commit);
        assert!(
            matches!(commit, Action::Reply(Response::Refused { .. })),
            "{commit:?}"
        );
        assert!(receiver.image().is_empty());
    }
}

#[test]
fn begin_refuses_bad_lengths() {
    let length = |len: u32| {
        move |header: &mut ImageHeader| {
            header.image_len = len;
            header.sent_len = len;
        }
    };
    assert_eq!(begin_with(length(0)), refusal("the image is empty"));
    assert_eq!(
        begin_with(length(STAGING as u32 + 1)),
        refusal("the image is larger than the staging buffer")
    );
    assert!(matches!(
        begin_with(length(STAGING as u32)),
        Action::Reply(Response::Ready { .. })
    ));
    assert_eq!(
        begin_with(|header| header.sent_len = header.image_len - 1),
        refusal("an uncompressed image is sent as it is")
    );
    // A compressed image needs room for its stream behind the inflated bytes.
    assert_eq!(
        begin_with(|header| {
            header.compressed = true;
            header.image_len = STAGING as u32 / 2;
            header.sent_len = STAGING as u32 / 2 + 1;
        }),
        refusal("the image is larger than the staging buffer")
    );
    let mem_protect = TARGETS[2];
    assert_eq!(
        begin_with(|header| {
            header.component = mem_protect.name;
            header.region_start = mem_protect.region_start;
            header.region_end = mem_protect.region_end;
            header.entry = mem_protect.region_start;
            header.image_len = 0x801;
            header.sent_len = 0x801;
        }),
        refusal("the image is larger than the region")
    );
}

#[test]
fn begin_refuses_while_a_swap_is_committed_and_leaves_the_image_alone() {
    let first = image(500);
    let mut staging = [0; STAGING];
    let mut receiver = committed(&mut staging, &first);
    let second = vec![0xa5; 500];
    assert_eq!(
        handle(&mut receiver, Request::Begin(header(&second))),
        refusal(UNDER_WAY)
    );
    assert_eq!(
        handle(
            &mut receiver,
            Request::Chunk {
                offset: 0,
                bytes: &second[..100]
            }
        ),
        refusal(UNDER_WAY)
    );
    assert_eq!(handle(&mut receiver, Request::Abort), refusal(UNDER_WAY));
    assert_eq!(handle(&mut receiver, Request::Commit), refusal(UNDER_WAY));
    assert_eq!(
        receiver.refuse_frame(FrameError::BadCrc),
        refusal("bad frame CRC")
    );
    assert_eq!(receiver.image(), &first[..]);
    // Once the swap ended, a new transfer may begin.
    assert_eq!(
        receiver.finished().map(|order| order.build_id),
        Some(build_id(&first))
    );
    assert!(receiver.image().is_empty());
    assert_eq!(receiver.finished(), None);
    assert!(matches!(
        handle(&mut receiver, Request::Begin(header(&second))),
        Action::Reply(Response::Ready { .. })
    ));
}

#[test]
fn a_new_begin_drops_the_earlier_transfer() {
    let image = image(600);
    let mut staging = [0; STAGING];
    let mut receiver = Receiver::new(&mut staging, 0);
    handle(&mut receiver, Request::Begin(header(&image)));
    send(&mut receiver, &image[..CHUNK_MAX]);
    handle(&mut receiver, Request::Begin(header(&image)));
    assert_eq!(
        handle(
            &mut receiver,
            Request::Chunk {
                offset: CHUNK_MAX as u32,
                bytes: &image[CHUNK_MAX..2 * CHUNK_MAX]
            }
        ),
        refusal("chunk out of order")
    );
    // A refused Begin drops it too.
    handle(&mut receiver, Request::Begin(header(&image)));
    send(&mut receiver, &image[..CHUNK_MAX]);
    let mut bad = header(&image);
    bad.image_len = 0;
    handle(&mut receiver, Request::Begin(bad));
    assert_eq!(
        handle(
            &mut receiver,
            Request::Chunk {
                offset: CHUNK_MAX as u32,
                bytes: &image[CHUNK_MAX..2 * CHUNK_MAX]
            }
        ),
        refusal(NO_TRANSFER)
    );
}

/// Begins a transfer of `image`, sends `before` chunks, then `request`; returns its answer
/// and the answer to the next in-order chunk (which shows whether the transfer survived).
fn chunk_after(image: &[u8], before: usize, offset: u32, bytes: &[u8]) -> (Action, Action) {
    let mut staging = [0; STAGING];
    let mut receiver = Receiver::new(&mut staging, 0);
    handle(&mut receiver, Request::Begin(header(image)));
    send(&mut receiver, &image[..before * CHUNK_MAX]);
    let answer = handle(&mut receiver, Request::Chunk { offset, bytes });
    let from = before * CHUNK_MAX;
    let next = handle(
        &mut receiver,
        Request::Chunk {
            offset: from as u32,
            bytes: &image[from..from + 1],
        },
    );
    (answer, next)
}

#[test]
fn bad_chunks_are_refused_and_drop_the_transfer() {
    let image = image(1000);
    let dropped = refusal(NO_TRANSFER);
    assert_eq!(
        chunk_after(&image, 1, 0, &image[..10]),
        (refusal("chunk out of order"), dropped)
    );
    assert_eq!(
        chunk_after(&image, 1, 2 * CHUNK_MAX as u32, &image[..10]),
        (refusal("chunk out of order"), dropped)
    );
    assert_eq!(
        chunk_after(&image, 0, 0, &image[..CHUNK_MAX + 1]),
        (refusal("chunk too long"), dropped)
    );
    let tail = vec![0; 1000 - 5 * CHUNK_MAX + 1];
    assert_eq!(
        chunk_after(&image, 5, 5 * CHUNK_MAX as u32, &tail),
        (refusal("chunk past the image's end"), dropped)
    );
    let mut staging = [0; STAGING];
    let mut receiver = Receiver::new(&mut staging, 0);
    assert_eq!(
        handle(
            &mut receiver,
            Request::Chunk {
                offset: 0,
                bytes: &image[..10]
            }
        ),
        dropped
    );
}

#[test]
fn an_empty_chunk_is_harmless() {
    let image = image(1000);
    assert_eq!(
        chunk_after(&image, 1, CHUNK_MAX as u32, &[]),
        (
            Action::Reply(Response::Received {
                next: CHUNK_MAX as u32
            }),
            Action::Reply(Response::Received {
                next: CHUNK_MAX as u32 + 1
            })
        )
    );
}

/// Begins with `header`, sends `image`, commits.
fn commit(header: ImageHeader<'static>, image: &[u8]) -> Action {
    let mut staging = [0; STAGING];
    let mut receiver = Receiver::new(&mut staging, 0);
    handle(&mut receiver, Request::Begin(header));
    send(&mut receiver, image);
    let answer = handle(&mut receiver, Request::Commit);
    // Refused or not, the commit ended the transfer.
    assert!(receiver.image().is_empty() || matches!(answer, Action::Swap(_)));
    if !matches!(answer, Action::Swap(_)) {
        assert_eq!(handle(&mut receiver, Request::Commit), refusal(NO_TRANSFER));
    }
    answer
}

#[test]
fn commit_refuses_without_a_complete_transfer() {
    let mut staging = [0; STAGING];
    let mut receiver = Receiver::new(&mut staging, 0);
    assert_eq!(handle(&mut receiver, Request::Commit), refusal(NO_TRANSFER));
    let image = image(1000);
    assert_eq!(
        commit(header(&image), &image[..999]),
        refusal("the image is incomplete")
    );
}

#[test]
fn commit_checks_the_crc_and_build_id() {
    let image = image(1000);
    let mut damaged = image.clone();
    damaged[500] ^= 0x10;
    assert_eq!(
        commit(header(&image), &damaged),
        refusal("the image's CRC differs from its header's")
    );
    let mut header = header(&image);
    header.build_id ^= 1;
    assert_eq!(
        commit(header, &image),
        refusal("the image's build id differs from its header's")
    );
}

#[test]
fn begin_and_commit_refuse_the_build_that_runs() {
    let image = image(1000);
    let mut staging = [0; STAGING];
    let mut receiver = Receiver::new(&mut staging, 0);
    assert_eq!(
        receiver.handle(Request::Begin(header(&image)), &TARGETS, |_| build_id(
            &image
        )),
        refusal("this build already runs")
    );
    // It may start running meanwhile (another swap): the Commit checks again.
    handle(&mut receiver, Request::Begin(header(&image)));
    send(&mut receiver, &image);
    assert_eq!(
        receiver.handle(Request::Commit, &TARGETS, |_| build_id(&image)),
        refusal("this build already runs")
    );
    assert!(receiver.image().is_empty());
}

#[test]
fn a_commit_orders_the_swap() {
    let image = image(1000);
    assert_eq!(
        commit(header(&image), &image),
        Action::Swap(SwapOrder {
            index: VM_MANAGER,
            image_len: 1000,
            entry_offset: 8,
            build_id: build_id(&image),
            old_build: running(VM_MANAGER),
        })
    );
}

#[test]
fn abort_and_broken_frames_drop_the_transfer() {
    let image = image(1000);
    for drop in [
        |receiver: &mut Receiver| handle(receiver, Request::Abort),
        |receiver: &mut Receiver| receiver.refuse_frame(FrameError::BadEncoding),
    ] {
        let mut staging = [0; STAGING];
        let mut receiver = Receiver::new(&mut staging, 0);
        handle(&mut receiver, Request::Begin(header(&image)));
        send(&mut receiver, &image);
        assert!(matches!(
            drop(&mut receiver),
            Action::Reply(Response::Refused { .. })
        ));
        assert_eq!(handle(&mut receiver, Request::Commit), refusal(NO_TRANSFER));
    }
    let mut staging = [0; STAGING];
    let mut receiver = Receiver::new(&mut staging, 0);
    assert_eq!(
        handle(&mut receiver, Request::Abort),
        refusal("transfer aborted")
    );
    // Without a transfer a broken frame gets no answer: the next tool's Begin must not
    // hear it.
    assert_eq!(receiver.refuse_frame(FrameError::TooLong), Action::Ignore);
}

#[test]
fn order_args_are_swaps() {
    let order = SwapOrder {
        index: 3,
        image_len: 0x1234,
        entry_offset: 0x56,
        build_id: 1,
        old_build: 2,
    };
    assert_eq!(kernel_op::swap_args_of(order.args()), (3, 0x1234, 0x56));
}

#[test]
fn outcomes_become_responses() {
    let order = SwapOrder {
        index: 1,
        image_len: 10,
        entry_offset: 0,
        build_id: 0x22,
        old_build: 0x11,
    };
    for outcome in SwapOutcome::ALL {
        let response = final_response(&order, outcome, 1234, 56);
        let expected = match outcome {
            SwapOutcome::Swapped => Response::Swapped {
                old_build: 0x11,
                new_build: 0x22,
                micros: 1234,
                state_len: 56,
            },
            SwapOutcome::NewFaulted
            | SwapOutcome::StateRefused
            | SwapOutcome::InterfaceChanged
            | SwapOutcome::TooSlow
            | SwapOutcome::Misbehaved => Response::RolledBack {
                reason: outcome.describe(),
            },
            SwapOutcome::None
            | SwapOutcome::NotSwappable
            | SwapOutcome::NotRunning
            | SwapOutcome::StateTooLarge
            | SwapOutcome::OldFaulted => Response::Refused {
                reason: outcome.describe(),
            },
        };
        assert_eq!(response, expected, "{outcome:?}");
    }
    assert!(matches!(
        final_response(&order, SwapOutcome::Swapped, 0, u64::MAX),
        Response::Swapped {
            state_len: u32::MAX,
            ..
        }
    ));
}

/// One step of the random sequences.
#[derive(Clone, Debug)]
enum Step {
    /// A header with random fields (component chosen from the targets and one unknown).
    BeginRandom {
        component: usize,
        region_start: u64,
        region_end: u64,
        entry: u64,
        image_len: u32,
        image_crc: u32,
        build_id: u64,
    },
    /// The header of image `image` of the pool, possibly with a wrong CRC or build id.
    BeginGood {
        image: usize,
        spoil: u8,
    },
    /// The next piece of the tool's image, possibly with a byte flipped.
    ChunkNext {
        len: usize,
        flip: Option<usize>,
    },
    /// A random chunk.
    ChunkRandom {
        offset: u32,
        bytes: Vec<u8>,
    },
    Commit,
    Abort,
    BadFrame,
    Finished,
}

/// The target's region start (or a random one), its end (or a random one).
fn region_of(component: usize, start: Option<u64>, end: Option<u64>) -> (u64, u64) {
    let target = TARGETS
        .get(component)
        .copied()
        .unwrap_or(TARGETS[VM_MANAGER]);
    (
        start.unwrap_or(target.region_start),
        end.unwrap_or(target.region_end),
    )
}

fn step() -> impl Strategy<Value = Step> {
    let begin_random = (
        0..4usize,
        prop::option::weighted(0.2, any::<u64>()),
        prop::option::weighted(0.2, any::<u64>()),
        prop_oneof![(0..0x900u64).prop_map(Ok), any::<u64>().prop_map(Err)],
        prop_oneof![0..0x900u32, 0..6000u32, any::<u32>()],
        any::<u32>(),
        any::<u64>(),
    )
        .prop_map(
            |(component, start, end, entry, image_len, image_crc, build_id)| {
                let (region_start, region_end) = region_of(component, start, end);
                Step::BeginRandom {
                    component,
                    region_start,
                    region_end,
                    // Mostly an offset into the region, sometimes anywhere.
                    entry: entry.map_or_else(|any| any, |offset| region_start.wrapping_add(offset)),
                    image_len,
                    image_crc,
                    build_id,
                }
            },
        );
    prop_oneof![
        1 => begin_random,
        1 => (0..3usize, 0..6u8).prop_map(|(image, spoil)| Step::BeginGood { image, spoil }),
        10 => (
            prop_oneof![3 => Just(CHUNK_MAX), 1 => 0..=CHUNK_MAX + 2],
            prop::option::weighted(0.05, 0..CHUNK_MAX)
        )
            .prop_map(|(len, flip)| Step::ChunkNext { len, flip }),
        1 => (
            prop_oneof![0..3000u32, any::<u32>()],
            prop::collection::vec(any::<u8>(), 0..CHUNK_MAX + 4)
        )
            .prop_map(|(offset, bytes)| Step::ChunkRandom { offset, bytes }),
        2 => Just(Step::Commit),
        1 => Just(Step::Abort),
        1 => Just(Step::BadFrame),
        1 => Just(Step::Finished),
    ]
}

proptest! {
    #[test]
    fn a_full_transfer_gives_one_swap_of_the_image(
        image in prop::collection::vec(any::<u8>(), 1..=STAGING),
    ) {
        let mut staging = [0; STAGING];
        let mut receiver = Receiver::new(&mut staging, 0);
        prop_assert_eq!(
            handle(&mut receiver, Request::Begin(header(&image))),
            Action::Reply(Response::Ready { running_build: running(VM_MANAGER) })
        );
        send(&mut receiver, &image);
        let order = handle(&mut receiver, Request::Commit);
        prop_assert_eq!(order, Action::Swap(SwapOrder {
            index: VM_MANAGER,
            image_len: image.len() as u32,
            entry_offset: 8.min(image.len() as u32 - 1),
            build_id: build_id(&image),
            old_build: running(VM_MANAGER),
        }));
        prop_assert_eq!(receiver.image(), &image[..]);
        prop_assert_eq!(handle(&mut receiver, Request::Commit), refusal(UNDER_WAY));
        prop_assert_eq!(receiver.image(), &image[..]);
    }

    #[test]
    fn random_requests_never_swap_an_unchecked_image(
        steps in prop::collection::vec(step(), 0..80),
        pool in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..600), 3),
    ) {
        let names = ["supervisor", "vm-manager", "mem-protect", "vm-mangler"];
        let mut staging = [0; STAGING];
        let mut receiver = Receiver::new(&mut staging, 0);
        // The tool's side: the image it sends and how far.
        let mut sending: &[u8] = &[];
        let mut cursor = 0usize;
        // The receiver's side as seen from outside: the last accepted header and the bytes
        // it acknowledged, in order, since.
        let mut accepted: Option<(usize, ImageHeader)> = None;
        let mut received: Vec<u8> = Vec::new();
        let mut committed: Option<Vec<u8>> = None;
        for step in steps {
            // The chunk or header sent, if any, and the answer.
            let mut chunk = None;
            let mut begun = None;
            let action = match step {
                Step::BeginRandom {
                    component, region_start, region_end, entry, image_len, image_crc, build_id,
                } => {
                    let header = ImageHeader {
                        component: names[component],
                        region_start, region_end, entry, image_len, image_crc, build_id,
                        compressed: false,
                        sent_len: image_len,
                    };
                    begun = Some((component, header));
                    handle(&mut receiver, Request::Begin(header))
                }
                Step::BeginGood { image, spoil } => {
                    sending = &pool[image];
                    cursor = 0;
                    let mut header = header(sending);
                    match spoil {
                        0 => header.image_crc ^= 1,
                        1 => header.build_id ^= 1,
                        2 => header.image_len -= 1,
                        _ => {}
                    }
                    begun = Some((VM_MANAGER, header));
                    handle(&mut receiver, Request::Begin(header))
                }
                Step::ChunkNext { len, flip } => {
                    let end = (cursor + len).min(sending.len());
                    let mut bytes = sending[cursor.min(end)..end].to_vec();
                    if let Some(at) = flip.filter(|&at| at < bytes.len()) {
                        bytes[at] ^= 0x80;
                    }
                    let offset = cursor as u32;
                    cursor = end;
                    let action = handle(&mut receiver, Request::Chunk { offset, bytes: &bytes });
                    chunk = Some((offset, bytes));
                    action
                }
                Step::ChunkRandom { offset, bytes } => {
                    let action = handle(&mut receiver, Request::Chunk { offset, bytes: &bytes });
                    chunk = Some((offset, bytes));
                    action
                }
                Step::Commit => handle(&mut receiver, Request::Commit),
                Step::Abort => handle(&mut receiver, Request::Abort),
                Step::BadFrame => receiver.refuse_frame(FrameError::BadCrc),
                Step::Finished => {
                    let order = receiver.finished();
                    prop_assert_eq!(order.is_some(), committed.is_some());
                    committed = None;
                    prop_assert!(receiver.image().is_empty());
                    continue;
                }
            };
            if let Some(image) = &committed {
                // Until the swap ends its image stays as it was, and nothing else happens.
                prop_assert!(
                    matches!(action, Action::Reply(Response::Refused { .. })),
                    "{:?} while committed", action
                );
                prop_assert_eq!(receiver.image(), &image[..]);
                continue;
            }
            match action {
                Action::Reply(Response::Received { next }) => {
                    let (offset, bytes) = chunk.expect("only a chunk is received");
                    prop_assert_eq!(offset as usize, received.len());
                    received.extend_from_slice(&bytes);
                    prop_assert_eq!(next as usize, received.len());
                    prop_assert!(accepted.is_some());
                }
                Action::Reply(Response::Ready { .. }) => {
                    accepted = Some(begun.expect("only a Begin is ready"));
                    received.clear();
                }
                Action::Reply(Response::Refused { .. }) => {
                    // Every refusal leaves no transfer.
                    accepted = None;
                    received.clear();
                }
                Action::Reply(other) => prop_assert!(false, "unexpected {:?}", other),
                Action::Ignore => {
                    // Only a broken frame with no transfer is ignored.
                    prop_assert!(accepted.is_none());
                }
                Action::Swap(order) => {
                    let (index, header) = accepted.take().expect("a swap needs a Begin");
                    let image = receiver.image().to_vec();
                    prop_assert_eq!(&image, &received);
                    prop_assert_eq!(image.len(), header.image_len as usize);
                    prop_assert_eq!(image_crc(&image), header.image_crc);
                    prop_assert_eq!(build_id(&image), header.build_id);
                    prop_assert_eq!(order.index, index);
                    prop_assert_ne!(index, 0);
                    prop_assert_eq!(order.build_id, header.build_id);
                    prop_assert_eq!(order.old_build, running(index));
                    prop_assert_eq!(
                        u64::from(order.entry_offset),
                        header.entry - TARGETS[index].region_start
                    );
                    received.clear();
                    committed = Some(image);
                }
            }
        }
    }
}
