//! Shows that malformed blobs give an `Error` and never a panic: every truncation, every
//! single-bit flip and many random multi-byte corruptions of a realistic blob are parsed, and
//! whatever still parses must round-trip through the writer. Std-only (a small xorshift PRNG
//! instead of proptest) so the crate needs no dependencies. Format: DTSpec v0.4 chapter 5,
//! <https://github.com/devicetree-org/devicetree-specification/releases/tag/v0.4>.

use hv_devicetree::{DeviceTree, Reservation};

/// A tree shaped like QEMU's virt machine, small enough to mutate exhaustively.
fn sample() -> DeviceTree {
    let mut t = DeviceTree {
        boot_cpuid: 0,
        reservations: vec![Reservation {
            address: 0x4800_0000,
            size: 0x1000,
        }],
        ..DeviceTree::default()
    };
    t.root.set_u32("#address-cells", 2);
    t.root.set_u32("#size-cells", 2);
    t.root.set_string("compatible", "linux,dummy-virt");
    let psci = t.ensure_node("/psci");
    psci.set_string("method", "smc");
    psci.set_property("compatible", &b"arm,psci-1.0\0arm,psci\0"[..]);
    let mem = t.ensure_node("/memory@40000000");
    mem.set_u32s("reg", &[0, 0x4000_0000, 0, 0x4000_0000]);
    mem.set_string("device_type", "memory");
    let cpus = t.ensure_node("/cpus");
    cpus.set_u32("#address-cells", 1);
    cpus.set_u32("#size-cells", 0);
    for i in 0..2 {
        let cpu = t.ensure_node(&format!("/cpus/cpu@{i}"));
        cpu.set_u32("reg", i);
        cpu.set_string("device_type", "cpu");
    }
    t.ensure_node("/cpus/cpu-map/socket0/cluster0/core0")
        .set_u32("cpu", 0x8001);
    t.set_chosen(Some("console=ttyAMA0"), Some((0x4400_0000, 0x4410_0000)));
    t
}

/// Parses `blob`; anything accepted must survive a write/parse round trip unchanged, and
/// every error must describe itself.
fn check(blob: &[u8]) -> bool {
    match DeviceTree::parse(blob) {
        Ok(tree) => {
            let again = DeviceTree::parse(&tree.to_bytes()).expect("own output parses");
            assert_eq!(again, tree);
            true
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            false
        }
    }
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn every_truncation_is_an_error() {
    let blob = sample().to_bytes();
    assert!(check(&blob));
    for len in 0..blob.len() {
        assert!(!check(&blob[..len]), "truncated to {len} parsed");
    }
}

#[test]
fn truncation_with_matching_totalsize_never_panics() {
    // Patching totalsize to the cut length gets past the header check, so the cut lands in
    // the reservation, structure or strings block instead.
    let blob = sample().to_bytes();
    for len in 40..blob.len() {
        let mut cut = blob[..len].to_vec();
        cut[4..8].copy_from_slice(&(len as u32).to_be_bytes());
        assert!(!check(&cut), "truncated to {len} parsed");
    }
}

#[test]
fn every_bit_flip_is_handled() {
    let blob = sample().to_bytes();
    let mut accepted = 0;
    for bit in 0..blob.len() * 8 {
        let mut flipped = blob.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        if check(&flipped) {
            accepted += 1;
        }
    }
    // Flips inside values and names still parse; flips in tokens and header mostly do not.
    assert!(accepted > 0 && accepted < blob.len() * 8);
}

#[test]
fn random_corruptions_are_handled() {
    let blob = sample().to_bytes();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..50_000 {
        let mut bad = blob.clone();
        for _ in 0..1 + rng.below(6) {
            let at = rng.below(bad.len());
            match rng.below(4) {
                // A random byte anywhere.
                0 => bad[at] = rng.next() as u8,
                // A plausible token or small number at a word boundary.
                1 => {
                    let at = at & !3;
                    let word = [1u32, 2, 3, 4, 9, 0, 0xffff_ffff][rng.below(7)];
                    if let Some(slot) = bad.get_mut(at..at + 4) {
                        slot.copy_from_slice(&word.to_be_bytes());
                    }
                }
                // A header field set to an offset or size near the blob's edges.
                2 => {
                    let field = 4 * (1 + rng.below(9));
                    let value = (rng.below(blob.len() + 16) as u32).wrapping_sub(8);
                    if let Some(slot) = bad.get_mut(field..field + 4) {
                        slot.copy_from_slice(&value.to_be_bytes());
                    }
                }
                // Drop or duplicate a chunk, shifting everything after it.
                _ => {
                    let len = rng.below(bad.len() - at).min(12);
                    if rng.next() & 1 == 0 {
                        bad.drain(at..at + len);
                    } else {
                        let chunk = bad[at..at + len].to_vec();
                        bad.splice(at..at, chunk);
                    }
                }
            }
            if bad.is_empty() {
                break;
            }
        }
        check(&bad);
    }
}

#[test]
fn random_garbage_with_valid_magic_is_handled() {
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let len = rng.below(200);
        let mut bad: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if len >= 4 {
            bad[..4].copy_from_slice(&0xd00d_feedu32.to_be_bytes());
        }
        if len >= 28 {
            bad[20..28].copy_from_slice(&[0, 0, 0, 17, 0, 0, 0, 16]);
        }
        check(&bad);
    }
}
