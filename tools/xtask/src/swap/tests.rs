use super::*;
use hv_ipc::swap::Response;
use hv_ipc::swap::{FRAME_MAX, FrameDecoder, Request, Step};
use std::collections::VecDeque;
use std::io::{Read, Write};

/// What the fake hypervisor does when it is sent a frame.
enum Reply {
    /// Answers these bytes (garbage, frames, or both).
    Bytes(Vec<u8>),
    /// Answers nothing.
    Silence,
    /// Hangs up.
    HangUp,
}

/// A scripted line: each request decoded and kept; the next reply queued for reading.
struct FakeLine {
    replies: VecDeque<Reply>,
    sent: Vec<Vec<u8>>,
    incoming: VecDeque<u8>,
    closed: bool,
    /// Bytes already waiting before the first request.
    stale: Vec<u8>,
    /// Most requests sent whose answers were not yet read.
    max_unanswered: usize,
    /// Requests sent whose answers were not yet read.
    unanswered: usize,
    /// Where each queued answer ends, counted in bytes ever queued.
    answer_ends: VecDeque<usize>,
    /// Bytes ever queued and ever read.
    queued: usize,
    read: usize,
}

impl FakeLine {
    fn new(replies: Vec<Reply>) -> Self {
        Self {
            replies: replies.into(),
            sent: Vec::new(),
            incoming: VecDeque::new(),
            closed: false,
            stale: Vec::new(),
            max_unanswered: 0,
            unanswered: 0,
            answer_ends: VecDeque::new(),
            queued: 0,
            read: 0,
        }
    }

    /// The requests sent, decoded (`None` for a frame that does not decode).
    fn requests(&self) -> Vec<Option<String>> {
        self.sent
            .iter()
            .filter(|frame| frame.len() > 2)
            .map(|frame| {
                let mut inner = frame[1..frame.len() - 1].to_vec();
                wire::decode::<Request>(&mut inner)
                    .ok()
                    .map(|request| match request {
                        Request::Begin(header) => format!("begin {}", header.image_len),
                        Request::Chunk { offset, bytes } => {
                            format!("chunk {offset}+{}", bytes.len())
                        }
                        Request::Commit => "commit".into(),
                        Request::Abort => "abort".into(),
                    })
            })
            .collect()
    }
}

impl Line for FakeLine {
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sent.push(bytes.to_vec());
        let is_abort = bytes.len() > 2 && {
            let mut inner = bytes[1..bytes.len() - 1].to_vec();
            matches!(wire::decode::<Request>(&mut inner), Ok(Request::Abort))
        };
        if is_abort {
            return Ok(());
        }
        self.unanswered += 1;
        self.max_unanswered = self.max_unanswered.max(self.unanswered);
        match self.replies.pop_front() {
            Some(Reply::Bytes(bytes)) => {
                self.queued += bytes.len();
                self.answer_ends.push_back(self.queued);
                self.incoming.extend(bytes);
            }
            Some(Reply::Silence) | None => {}
            Some(Reply::HangUp) => self.closed = true,
        }
        Ok(())
    }

    fn receive(&mut self, buffer: &mut [u8], wait: Duration) -> std::io::Result<Heard> {
        if !self.stale.is_empty() {
            let stale = std::mem::take(&mut self.stale);
            buffer[..stale.len()].copy_from_slice(&stale);
            return Ok(Heard::Bytes(stale.len()));
        }
        if self.incoming.is_empty() {
            if self.closed {
                return Ok(Heard::Closed);
            }
            std::thread::sleep(wait.min(Duration::from_millis(5)));
            return Ok(Heard::Nothing);
        }
        // A few bytes at a time, as a UART delivers them.
        let mut read = 0;
        while read < buffer.len().min(7) {
            let Some(byte) = self.incoming.pop_front() else {
                break;
            };
            buffer[read] = byte;
            read += 1;
        }
        self.read += read;
        while self
            .answer_ends
            .front()
            .is_some_and(|&end| end <= self.read)
        {
            self.answer_ends.pop_front();
            self.unanswered = self.unanswered.saturating_sub(1);
        }
        Ok(Heard::Bytes(read))
    }
}

fn frame(response: Response) -> Vec<u8> {
    let mut buffer = [0u8; FRAME_MAX + 2];
    wire::encode(&response, &mut buffer).unwrap().to_vec()
}

fn image(len: usize) -> SwapImage {
    SwapImage {
        component: "vm-manager".into(),
        region: PhysRange::from_size(0x4040_0000, 0x10_0000).unwrap(),
        entry: 0x4040_0000,
        bytes: (0..len).map(|i| (i % 251) as u8).collect(),
        compressed: None,
        elf: PathBuf::from("vm-manager.elf"),
        hook: None,
    }
}

/// The replies of a hypervisor that accepts everything.
fn accepting(len: usize, outcome: Response) -> Vec<Reply> {
    let mut replies = vec![Reply::Bytes(frame(Response::Ready { running_build: 7 }))];
    for (offset, bytes) in chunks(&vec![0; len]) {
        let next = offset + bytes.len() as u32;
        replies.push(Reply::Bytes(frame(Response::Received { next })));
    }
    replies.push(Reply::Bytes(frame(outcome)));
    replies
}

fn quick() -> Options {
    Options {
        corrupt: false,
        timeouts: Timeouts {
            ready: Duration::from_millis(200),
            chunk: Duration::from_millis(200),
            outcome: Duration::from_millis(200),
        },
        show_progress: false,
        stop_and_wait: false,
    }
}

const SWAPPED: Response<'static> = Response::Swapped {
    old_build: 7,
    new_build: 8,
    micros: 1500,
    state_len: 96,
};

#[test]
fn an_image_is_cut_into_full_chunks_and_a_rest() {
    let image = vec![1u8; 2 * CHUNK_MAX + 5];
    let cut: Vec<(u32, usize)> = chunks(&image)
        .map(|(offset, bytes)| (offset, bytes.len()))
        .collect();
    let max = CHUNK_MAX as u32;
    assert_eq!(
        cut,
        [(0, CHUNK_MAX), (max, CHUNK_MAX), (2 * max, 5)],
        "offsets follow on"
    );
    assert_eq!(chunks(&[]).count(), 0);
    assert_eq!(chunks(&[0; CHUNK_MAX]).count(), 1);
}

#[test]
fn a_whole_exchange_reports_the_swap() {
    let len = 3 * CHUNK_MAX + 17;
    let mut line = FakeLine::new(accepting(len, SWAPPED));
    let report = exchange(&mut line, &image(len), &quick()).unwrap();
    assert!(report.swapped(), "{report:?}");
    assert_eq!(report.running_build, Some(7));
    assert_eq!(report.chunks, 4);
    assert!(report.commit.is_some());
    assert!(report.total >= report.transfer);
    assert_eq!(
        line.requests(),
        [
            Some(format!("begin {len}")),
            Some("chunk 0+192".into()),
            Some("chunk 192+192".into()),
            Some("chunk 384+192".into()),
            Some("chunk 576+17".into()),
            Some("commit".into()),
        ]
    );
    let shown = report.describe();
    assert!(
        shown.starts_with(
            "swapped vm-manager: build 0x0000000000000007 -> 0x0000000000000008 in 1.5 ms \
             (state: 96 bytes), transfer took "
        ),
        "{shown}"
    );
}

#[test]
fn the_header_describes_the_image() {
    let image = image(1000);
    let header = image.header().unwrap();
    assert_eq!(header.component, "vm-manager");
    assert_eq!(
        (header.region_start, header.region_end),
        (0x4040_0000, 0x4050_0000)
    );
    assert_eq!(header.image_len, 1000);
    assert_eq!(header.image_crc, wire::image_crc(&image.bytes));
    assert_eq!(header.build_id, wire::build_id(&image.bytes));
    assert_eq!((header.compressed, header.sent_len), (false, 1000));
    // Compressed, the chunks carry the zlib stream; the CRC and build id stay the image's.
    let stream = miniz_oxide::deflate::compress_to_vec_zlib(&image.bytes, 9);
    let compressed = SwapImage {
        compressed: Some(stream.clone()),
        ..image
    };
    let header = compressed.header().unwrap();
    assert_eq!(
        (header.compressed, header.sent_len),
        (true, stream.len() as u32)
    );
    assert_eq!(header.image_len, 1000);
    assert_eq!(compressed.sent(), &stream[..]);
    assert_eq!(
        miniz_oxide::inflate::decompress_to_vec_zlib(compressed.sent()).unwrap(),
        compressed.bytes
    );
}

#[test]
fn garbage_before_answers_and_stale_bytes_are_skipped() {
    let len = 2 * CHUNK_MAX;
    let mut replies = accepting(len, SWAPPED);
    // Noise, a broken frame and a frame of another protocol before each answer.
    for reply in &mut replies {
        if let Reply::Bytes(bytes) = reply {
            let mut noisy = vec![0x55, 0xaa, 0x00, 0x13, 0x37];
            let mut damaged = frame(Response::Received { next: 5 });
            damaged[3] ^= 0x40;
            noisy.extend(damaged);
            noisy.extend([0, b'h', b'i', 0]);
            noisy.extend(bytes.iter());
            *bytes = noisy;
        }
    }
    let mut line = FakeLine::new(replies);
    // An answer left from an abandoned exchange must not be taken for this one's.
    line.stale = frame(Response::Refused { reason: "old" });
    let report = exchange(&mut line, &image(len), &quick()).unwrap();
    assert!(report.swapped(), "{report:?}");
}

#[test]
fn a_refused_chunk_ends_the_transfer_with_the_reason() {
    let len = 4 * CHUNK_MAX;
    let mut replies = accepting(len, SWAPPED);
    replies.truncate(2);
    replies.push(Reply::Bytes(frame(Response::Refused {
        reason: "bad frame CRC",
    })));
    let mut line = FakeLine::new(replies);
    let report = exchange(&mut line, &image(len), &quick()).unwrap();
    assert_eq!(
        report.outcome,
        SwapOutcome::Refused {
            at: SwapStep::Chunk {
                index: 1,
                offset: CHUNK_MAX as u32
            },
            reason: "bad frame CRC".into()
        }
    );
    assert_eq!(report.chunks, 1);
    assert_eq!(report.commit, None);
    assert_eq!(
        report.describe(),
        "refused: bad frame CRC (at chunk 1, offset 192)"
    );
    assert!(SwapExpect::Refused("CRC").check(&report).is_ok());
    // Nothing is sent once the refusal is heard: Begin and the chunks already in flight
    // (the window; here all four).
    assert_eq!(line.requests().len(), 1 + WINDOW.min(4));
}

#[test]
fn a_begin_damaged_on_the_line_is_sent_again_once() {
    // The supervisor saw only part of the first Begin (a FIFO overrun before it read).
    let mut replies = vec![Reply::Bytes(frame(Response::Refused {
        reason: "bad frame CRC",
    }))];
    replies.extend(accepting(10, SWAPPED));
    let mut line = FakeLine::new(replies);
    let report = exchange(&mut line, &image(10), &quick()).unwrap();
    assert!(
        matches!(report.outcome, SwapOutcome::Swapped { .. }),
        "{report:?}"
    );
    let requests = line.requests();
    assert_eq!(requests[0], requests[1]);
    // A refusal of the request itself is final: Begin goes once.
    let mut line = FakeLine::new(vec![
        Reply::Bytes(frame(Response::Refused {
            reason: "no component named vm-manager",
        })),
        Reply::Bytes(frame(Response::Refused {
            reason: "bad frame CRC",
        })),
    ]);
    let report = exchange(&mut line, &image(10), &quick()).unwrap();
    assert!(matches!(report.outcome, SwapOutcome::Refused { .. }));
    assert_eq!(line.requests().len(), 1);
}

#[test]
fn a_mini_uart_line_is_stop_and_wait() {
    assert!(Options::for_board(&hv_board::RPI4).stop_and_wait);
    assert!(!Options::for_board(&hv_board::QEMU_VIRT).stop_and_wait);
}

#[test]
fn stop_and_wait_keeps_one_chunk_in_flight() {
    // Every chunk is answered only once the previous answer came: a line that answers chunk n
    // only after it saw exactly n + 1 chunks would stall with more in flight.
    let len = 5 * CHUNK_MAX;
    let mut line = FakeLine::new(accepting(len, SWAPPED));
    let options = Options {
        stop_and_wait: true,
        ..quick()
    };
    let report = exchange(&mut line, &image(len), &options).unwrap();
    assert!(
        matches!(report.outcome, SwapOutcome::Swapped { .. }),
        "{report:?}"
    );
    assert_eq!(line.max_unanswered, 1);
    let mut line = FakeLine::new(accepting(len, SWAPPED));
    exchange(&mut line, &image(len), &quick()).unwrap();
    assert_eq!(line.max_unanswered, WINDOW);
}

#[test]
fn a_refused_begin_and_a_rollback_are_outcomes() {
    let mut line = FakeLine::new(vec![Reply::Bytes(frame(Response::Refused {
        reason: "no component named vm-manager",
    }))]);
    let report = exchange(&mut line, &image(10), &quick()).unwrap();
    assert_eq!(report.running_build, None);
    assert!(matches!(
        report.outcome,
        SwapOutcome::Refused {
            at: SwapStep::Begin,
            ..
        }
    ));
    let mut line = FakeLine::new(accepting(
        10,
        Response::RolledBack {
            reason: "the new instance refused the state",
        },
    ));
    let report = exchange(&mut line, &image(10), &quick()).unwrap();
    assert_eq!(
        report.describe(),
        "rolled back: the new instance refused the state"
    );
    assert!(
        SwapExpect::RolledBack("refused the state")
            .check(&report)
            .is_ok()
    );
    assert!(SwapExpect::Swapped.check(&report).is_err());
}

#[test]
fn timeouts_name_their_step() {
    let error = |replies: Vec<Reply>| {
        let mut line = FakeLine::new(replies);
        format!(
            "{:#}",
            exchange(&mut line, &image(2 * CHUNK_MAX), &quick()).unwrap_err()
        )
    };
    let begin = error(vec![Reply::Silence]);
    assert!(begin.contains("no answer to Begin within 0.2 s"), "{begin}");
    let mut replies = accepting(2 * CHUNK_MAX, SWAPPED);
    replies.truncate(2);
    replies.push(Reply::Silence);
    let chunk = error(replies);
    assert!(
        chunk.contains("no answer to chunk 1 (offset 192)"),
        "{chunk}"
    );
    let mut replies = accepting(2 * CHUNK_MAX, SWAPPED);
    replies.pop();
    replies.push(Reply::Silence);
    let commit = error(replies);
    assert!(commit.contains("no answer to Commit"), "{commit}");
    let closed = error(vec![Reply::HangUp]);
    assert!(closed.contains("control line closed"), "{closed}");
}

#[test]
fn a_chunk_timeout_aborts_the_transfer() {
    let mut replies = accepting(2 * CHUNK_MAX, SWAPPED);
    replies.truncate(1);
    replies.push(Reply::Silence);
    let mut line = FakeLine::new(replies);
    assert!(exchange(&mut line, &image(2 * CHUNK_MAX), &quick()).is_err());
    assert_eq!(line.requests().last(), Some(&Some("abort".to_owned())));
}

#[test]
fn an_out_of_step_acknowledgement_is_an_error() {
    let mut line = FakeLine::new(vec![
        Reply::Bytes(frame(Response::Ready { running_build: 1 })),
        Reply::Bytes(frame(Response::Received { next: 5 })),
    ]);
    let error = format!(
        "{:#}",
        exchange(&mut line, &image(300), &quick()).unwrap_err()
    );
    assert!(error.contains("out of step"), "{error}");
}

#[test]
fn a_corrupted_frame_is_one_chunk_with_one_bit_flipped() {
    let len = 5 * CHUNK_MAX;
    let mut replies = accepting(len, SWAPPED);
    replies.truncate(3);
    replies.push(Reply::Bytes(frame(Response::Refused {
        reason: "bad frame CRC",
    })));
    let mut line = FakeLine::new(replies);
    let options = Options {
        corrupt: true,
        ..quick()
    };
    let report = exchange(&mut line, &image(len), &options).unwrap();
    assert!(matches!(
        report.outcome,
        SwapOutcome::Refused {
            at: SwapStep::Chunk { index: 2, .. },
            ..
        }
    ));
    // The third chunk (of five) went out damaged: it no longer decodes, and differs from
    // its good encoding in exactly one bit.
    let requests = line.requests();
    assert_eq!(requests[3], None, "{requests:?}");
    let image = image(len);
    let good = encode(&Request::Chunk {
        offset: 2 * CHUNK_MAX as u32,
        bytes: &image.bytes[2 * CHUNK_MAX..3 * CHUNK_MAX],
    })
    .unwrap();
    let sent = &line.sent[3];
    assert_eq!(sent.len(), good.len());
    let flipped: u32 = sent
        .iter()
        .zip(&good)
        .map(|(a, b)| (a ^ b).count_ones())
        .sum();
    assert_eq!(flipped, 1);
    assert!(sent[1..sent.len() - 1].iter().all(|&byte| byte != 0));
}

#[test]
fn corrupting_flips_a_data_bit_so_that_the_crc_catches_it() {
    // Code bytes (3, 2) are left alone; the data byte nearest the middle is flipped, and a
    // byte of 1 becomes 3, never 0.
    let mut frame = [0, 3, 1, 9, 2, 4, 0];
    corrupt(&mut frame);
    assert_eq!(frame, [0, 3, 1, 8, 2, 4, 0]);
    let mut frame = [0, 2, 1, 2, 1, 0];
    corrupt(&mut frame);
    assert_eq!(frame, [0, 2, 3, 2, 1, 0]);
    // Nothing but code bytes: the middle one, still never zero.
    let mut frame = [0, 1, 1, 1, 0];
    corrupt(&mut frame);
    assert_eq!(frame, [0, 1, 3, 1, 0]);
    corrupt(&mut []);
    corrupt(&mut [0]);
    // Every frame the tool sends, damaged so, fails on its CRC alone.
    let bytes: Vec<u8> = (0..=255).cycle().take(CHUNK_MAX).collect();
    for (offset, bytes) in chunks(&bytes).chain(chunks(&[0; 100])) {
        let mut frame = encode(&Request::Chunk { offset, bytes }).unwrap();
        corrupt(&mut frame);
        let mut inner = frame[1..frame.len() - 1].to_vec();
        assert!(inner.iter().all(|&byte| byte != 0));
        assert_eq!(
            wire::decode::<Request>(&mut inner).unwrap_err(),
            wire::FrameError::BadCrc
        );
    }
}

#[test]
fn hook_names_are_the_configurations() {
    for hook in [
        SwapTest::RefuseState,
        SwapTest::FaultAtStart,
        SwapTest::Slow,
        SwapTest::Hang,
        SwapTest::SchemaChange,
    ] {
        let value = toml::Value::try_from(hook).unwrap();
        assert_eq!(value.as_str(), Some(hook_name(hook)));
    }
}

#[test]
fn socket_paths_stay_short_enough() {
    let short = ControlLine::in_dir(Path::new("/work/target/xtask/qemu-virt"));
    assert_eq!(
        short.socket,
        Path::new("/work/target/xtask/qemu-virt/control.sock")
    );
    let deep = Path::new("/a").join("very-long-folder-name".repeat(8));
    let long = ControlLine::in_dir(&deep);
    assert!(long.socket.as_os_str().len() <= SOCKET_PATH_MAX);
    assert_eq!(long, ControlLine::in_dir(&deep), "the same path every time");
    assert_eq!(long.swapped_dir(), deep.join("swapped"));
    let args = short.qemu_args();
    assert_eq!(
        args,
        [
            "-chardev",
            "socket,id=control,path=/work/target/xtask/qemu-virt/control.sock,server=on,wait=off",
            "-serial",
            "chardev:control"
        ]
    );
}

#[test]
fn an_exchange_over_a_real_socket() {
    let dir = std::env::temp_dir().join(format!("hv-swap-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let control = ControlLine::in_dir(&dir);
    let _ = std::fs::remove_file(&control.socket);
    let listener = std::os::unix::net::UnixListener::bind(&control.socket).unwrap();
    let elf = dir.join("component.elf");
    std::fs::write(&elf, b"an ELF").unwrap();
    let mut image = image(CHUNK_MAX + 1);
    image.elf = elf;
    // The hypervisor's side: answers each request as it decodes it.
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut decoder = FrameDecoder::new();
        let mut buffer = [0u8; 64];
        loop {
            let read = stream.read(&mut buffer).unwrap();
            if read == 0 {
                return;
            }
            for &byte in &buffer[..read] {
                let Step::Frame(len) = decoder.push(byte) else {
                    continue;
                };
                let answer = match decoder.take::<Request>(len).unwrap() {
                    Request::Begin(_) => Response::Ready { running_build: 3 },
                    Request::Chunk { offset, bytes } => Response::Received {
                        next: offset + bytes.len() as u32,
                    },
                    Request::Commit => SWAPPED,
                    Request::Abort => continue,
                };
                stream.write_all(&frame(answer)).unwrap();
            }
        }
    });
    let report = transfer(&control, &image, &quick()).unwrap();
    assert!(report.swapped());
    assert_eq!(
        std::fs::read(swapped_elf(&control.swapped_dir(), image.build_id())).unwrap(),
        b"an ELF"
    );
    server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
