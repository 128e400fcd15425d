//! Tests of the component's decisions over a Vec-backed ownership table and stage 2.

mod guests;
mod sharing;
mod sharing_model;

use super::*;
use crate::stage2::{Entry, MemoryMap, PoolKind, RegionKind, TABLE_ENTRIES, Table, TablePools};
use hv_ipc::addr::Ipa;

const MIB: u64 = 1 << 20;
const RAM: IpaRange = IpaRange::new(0x4000_0000, 0x4000_0000 + 64 * MIB);
const HYP: IpaRange = IpaRange::new(0x4000_0000 + 60 * MIB, 0x4000_0000 + 64 * MIB);
const HOLE: IpaRange = IpaRange::new(0x0900_0000, 0x0900_1000);
const MEMORY_PA: u64 = 0x8000_0000_0000;
const DEVICE_PA: u64 = 0x9000_0000_0000;

#[derive(Default)]
struct FakeKernel {
    invalidations: Vec<Invalidation>,
    guest_invalidations: Vec<(u16, GuestInvalidation)>,
    zeroed: Vec<(u64, u64)>,
    refuse_zeroing: bool,
    /// Every request in order: "host-tlb", "guest-tlb", "zero".
    sequence: Vec<&'static str>,
}

impl Kernel for FakeKernel {
    fn invalidate(&mut self, what: Invalidation) {
        self.sequence.push("host-tlb");
        self.invalidations.push(what);
    }
    fn invalidate_guest(&mut self, vm: u16, what: GuestInvalidation) {
        self.sequence.push("guest-tlb");
        self.guest_invalidations.push((vm, what));
    }
    fn zero_pages(&mut self, start: u64, len: u64) -> bool {
        if self.refuse_zeroing {
            return false;
        }
        self.sequence.push("zero");
        self.zeroed.push((start, len));
        true
    }
}

struct Backing {
    records: Vec<u8>,
    memory: Vec<Table>,
    device: Vec<Table>,
    ram: [IpaRange; 1],
    reserved: [IpaRange; 1],
    holes: [IpaRange; 1],
}

impl Backing {
    fn new(device_tables: usize) -> Self {
        let ram = [RAM];
        let map = MemoryMap::new(&ram, 40).unwrap();
        Self {
            records: vec![0; (RAM.len() / PAGE_SIZE) as usize],
            memory: vec![[0; TABLE_ENTRIES]; crate::stage2::memory_pool_tables(&map)],
            device: vec![[0; TABLE_ENTRIES]; device_tables],
            ram,
            reserved: [HYP],
            holes: [HOLE],
        }
    }

    fn service(&mut self, policy: MappingPolicy) -> MemProtect<'_> {
        let mut ownership = OwnershipTable::new(PhysAddr(RAM.start), &mut self.records).unwrap();
        ownership
            .reserve_for_hypervisor(PhysAddr(HYP.start)..PhysAddr(HYP.end))
            .unwrap();
        let map = MemoryMap::new(&self.ram, 40).unwrap();
        let pools =
            TablePools::new(&mut self.memory, MEMORY_PA, &mut self.device, DEVICE_PA).unwrap();
        let stage2 = HostStage2::new(pools, map, policy).unwrap();
        assert_eq!(stage2.root_pa(), MEMORY_PA);
        MemProtect::new(ownership, stage2, &self.reserved, &self.holes)
    }
}

fn call(function: u32, x1: u64, x2: u64, x3: u64) -> [u64; 8] {
    [u64::from(function), x1, x2, x3, 0, 0, 0, 0]
}

const PAGE: u64 = 0x4010_0000;

#[test]
fn decode_validates_arguments() {
    use function::*;
    let bad = Err(code::INVALID_PARAMETER);
    assert_eq!(decode_host_call(&call(HOST_SHARE_HYP, PAGE + 8, 0, 0)), bad);
    assert_eq!(decode_host_call(&call(HOST_DONATE_GUEST, PAGE, 0, 1)), bad);
    assert_eq!(
        decode_host_call(&call(HOST_DONATE_GUEST, PAGE + 1, 1, 1)),
        bad
    );
    assert_eq!(
        decode_host_call(&call(HOST_RECLAIM, PAGE, u64::MAX, 1)),
        bad
    );
    assert_eq!(decode_host_call(&call(HOST_RECLAIM, !0xfff, 1, 1)), bad);
    assert_eq!(
        decode_host_call(&call(HOST_DONATE_GUEST, PAGE, 1, u64::from(MAX_GUESTS))),
        bad
    );
    assert_eq!(
        decode_host_call(&call(HOST_DONATE_GUEST, PAGE, 1, 256)),
        bad
    );
    assert_eq!(
        decode_host_call(&call(0xC600_0095, PAGE, 1, 1)),
        Err(code::NOT_SUPPORTED)
    );
    // HOST_GUEST_SHARED: a VM id that fits a u16, any n (whether it is a guest is checked
    // later); MEM_SHARE is not a host call.
    assert_eq!(
        decode_host_call(&call(HOST_GUEST_SHARED, 0x1_0000, 0, 0)),
        bad
    );
    assert_eq!(
        decode_host_call(&call(HOST_GUEST_SHARED, 1, u64::MAX, 7)),
        Ok(HostCall::GuestShared { vm: 1, n: u64::MAX })
    );
    assert_eq!(
        decode_host_call(&call(MEM_SHARE, PAGE, 0, 0)),
        Err(code::NOT_SUPPORTED)
    );
    assert_eq!(
        decode_host_call(&call(HOST_DONATE_GUEST, PAGE, 2, 3)),
        Ok(HostCall::DonateGuest {
            pages: PhysAddr(PAGE)..PhysAddr(PAGE + 2 * PAGE_SIZE),
            guest: 3
        })
    );
    // Only w0 names the function.
    let mut regs = call(HOST_SHARE_HYP, PAGE, 0, 0);
    regs[0] |= 0xdead_0000_0000_0000;
    assert_eq!(
        decode_host_call(&regs),
        Ok(HostCall::ShareHyp {
            page: PhysAddr(PAGE)
        })
    );
}

#[test]
fn error_codes_are_distinct_per_kind() {
    let addr = PhysAddr(PAGE);
    let cases = [
        (OwnershipError::NotMemory { addr }, code::INVALID_PARAMETER),
        (OwnershipError::Misaligned { addr }, code::INVALID_PARAMETER),
        (
            OwnershipError::EmptyRange {
                start: addr,
                end: addr,
            },
            code::INVALID_PARAMETER,
        ),
        (OwnershipError::OutOfRange, code::INVALID_PARAMETER),
        (
            OwnershipError::NoSuchGuest { guest: 99 },
            code::INVALID_PARAMETER,
        ),
        (
            OwnershipError::NotOwnedByHost {
                addr,
                owner: Party::Hypervisor,
            },
            code::NOT_OWNED,
        ),
        (
            OwnershipError::NotOwnedByGuest {
                addr,
                guest: 1,
                owner: Party::Host,
            },
            code::NOT_OWNED,
        ),
        (
            OwnershipError::AlreadyShared {
                addr,
                borrower: Party::Hypervisor,
            },
            code::ALREADY_SHARED,
        ),
        (OwnershipError::NotShared { addr }, code::NOT_SHARED),
    ];
    for (error, expected) in cases {
        assert_eq!(error_code(error), expected, "{error:?}");
    }
}

#[test]
fn faults_map_ram_and_devices_and_refuse_the_rest() {
    let mut backing = Backing::new(8);
    let mut service = backing.service(MappingPolicy::LargestBlock);
    let mut kernel = FakeKernel::default();
    // RAM: a 2 MiB block (the 1 GiB window holds the hypervisor's range and is not RAM wholly).
    match service.stage2_fault(Ipa(PAGE + 0x123), Access::Read, &mut kernel) {
        FaultOutcome::Mapped(Mapped::New { level, kind, .. }) => {
            assert_eq!((level, kind), (2, RegionKind::Memory))
        }
        other => panic!("{other:?}"),
    }
    // The hypervisor's memory: refused, owner named.
    assert_eq!(
        service.stage2_fault(Ipa(HYP.start + 8), Access::Read, &mut kernel),
        FaultOutcome::Refused {
            page: HYP.start,
            owner: Some(Party::Hypervisor)
        }
    );
    assert_eq!(
        service.stage2_fault(Ipa(HYP.end - 8), Access::Read, &mut kernel),
        FaultOutcome::Refused {
            page: HYP.end - PAGE_SIZE,
            owner: Some(Party::Hypervisor)
        }
    );
    // A device next to the hole: mapped, but never over the hole.
    assert!(matches!(
        service.stage2_fault(Ipa(HOLE.start - 8), Access::Read, &mut kernel),
        FaultOutcome::Mapped(Mapped::New {
            kind: RegionKind::Device,
            ..
        })
    ));
    assert_eq!(service.stage2().lookup(HOLE.start), Ok(Entry::Unmapped));
    assert_eq!(
        service.stage2_fault(Ipa(HOLE.start), Access::Read, &mut kernel),
        FaultOutcome::Refused {
            page: HOLE.start,
            owner: None
        }
    );
    let stats = service.stats();
    assert_eq!(stats.faults, 5);
    assert_eq!(stats.refused, 3);
}

/// The table fill asks the ownership table about every block: one fault maps all the host's
/// RAM but the hypervisor's range and the block holding a donated page (left to a later
/// fault, which maps its pages but the donated one); a page shared with the hypervisor is
/// still the host's.
#[test]
fn one_fault_maps_all_the_hosts_ram_but_what_it_does_not_own() {
    use function::*;
    let mut backing = Backing::new(8);
    let mut service = backing.service(MappingPolicy::LargestBlock);
    let mut kernel = FakeKernel::default();
    let donated = PAGE + 2 * MIB + 0x5000;
    let shared = PAGE + 8 * MIB;
    for (function, page, pages) in [(HOST_DONATE_GUEST, donated, 1), (HOST_SHARE_HYP, shared, 0)] {
        let outcome = service.host_call(&call(function, page, pages, 1), &mut kernel);
        assert_eq!(outcome.code, code::SUCCESS);
    }
    kernel.invalidations.clear();
    let outcome = service.stage2_fault(Ipa(PAGE), Access::Read, &mut kernel);
    // 32 blocks of 2 MiB - the hypervisor's 2 - the donated page's - the faulting one.
    let FaultOutcome::Mapped(Mapped::New { level, filled, .. }) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!((level, filled), (2, [0, 0, 28, 0]));
    assert!(
        kernel.invalidations.is_empty(),
        "filling empty entries needs none"
    );
    assert!(matches!(
        service.stage2().lookup(shared),
        Ok(Entry::Mapped { level: 2, .. })
    ));
    for page in [HYP.start, HYP.end - PAGE_SIZE, donated, donated - PAGE_SIZE] {
        assert!(
            !matches!(service.stage2().lookup(page), Ok(Entry::Mapped { .. })),
            "{page:#x}"
        );
    }
    let outcome = service.stage2_fault(Ipa(donated - PAGE_SIZE), Access::Read, &mut kernel);
    let FaultOutcome::Mapped(Mapped::New { level, filled, .. }) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!((level, filled), (3, [0, 0, 0, 510]));
    assert_eq!(
        service.stage2_fault(Ipa(donated), Access::Read, &mut kernel),
        FaultOutcome::Refused {
            page: donated,
            owner: Some(Party::Guest(1))
        }
    );
    let stats = service.stats();
    assert_eq!((stats.faults, stats.refused), (3, 1));
    assert_eq!(stats.blocks_mapped, [0, 0, 29, 511]);
}

#[test]
fn donate_reclaim_round_trip() {
    use function::*;
    let mut backing = Backing::new(8);
    let mut service = backing.service(MappingPolicy::LargestBlock);
    let mut kernel = FakeKernel::default();
    assert!(matches!(
        service.stage2_fault(Ipa(PAGE), Access::Read, &mut kernel),
        FaultOutcome::Mapped(_)
    ));
    let donate = service.host_call(&call(HOST_DONATE_GUEST, PAGE, 2, 1), &mut kernel);
    assert_eq!(donate.code, code::SUCCESS);
    assert_eq!(donate.table_failures, 0);
    // The block was split, break-before-make: invalidated.
    assert!(!kernel.invalidations.is_empty());
    for page in [PAGE, PAGE + PAGE_SIZE] {
        assert!(matches!(
            service.stage2().lookup(page),
            Ok(Entry::Annotated(OwnerId(3)))
        ));
        assert_eq!(
            service.stage2_fault(Ipa(page), Access::Read, &mut kernel),
            FaultOutcome::Refused {
                page,
                owner: Some(Party::Guest(1))
            }
        );
    }
    // The neighbours stay mapped.
    assert!(matches!(
        service.stage2().lookup(PAGE + 2 * PAGE_SIZE),
        Ok(Entry::Mapped { .. })
    ));
    // Wrong guest, then too many pages: NOT_OWNED, nothing changes.
    assert_eq!(
        service
            .host_call(&call(HOST_RECLAIM, PAGE, 2, 2), &mut kernel)
            .code,
        code::NOT_OWNED
    );
    assert_eq!(
        service
            .host_call(&call(HOST_RECLAIM, PAGE, 3, 1), &mut kernel)
            .code,
        code::NOT_OWNED
    );
    assert!(kernel.zeroed.is_empty());
    let reclaim = service.host_call(&call(HOST_RECLAIM, PAGE, 2, 1), &mut kernel);
    assert_eq!(reclaim.code, code::SUCCESS);
    assert_eq!(kernel.zeroed, vec![(PAGE, 2 * PAGE_SIZE)]);
    assert_eq!(service.stage2().lookup(PAGE), Ok(Entry::Unmapped));
    assert!(matches!(
        service.stage2_fault(Ipa(PAGE + PAGE_SIZE), Access::Read, &mut kernel),
        FaultOutcome::Mapped(Mapped::New { level: 3, .. })
    ));
}

#[test]
fn reclaim_without_zeroing_gives_the_pages_back() {
    use function::*;
    let mut backing = Backing::new(8);
    let mut service = backing.service(MappingPolicy::PageOnly);
    let mut kernel = FakeKernel::default();
    assert_eq!(
        service
            .host_call(&call(HOST_DONATE_GUEST, PAGE, 1, 0), &mut kernel)
            .code,
        code::SUCCESS
    );
    kernel.refuse_zeroing = true;
    assert_eq!(
        service
            .host_call(&call(HOST_RECLAIM, PAGE, 1, 0), &mut kernel)
            .code,
        code::NOT_SUPPORTED
    );
    assert_eq!(
        service.ownership().owner(PhysAddr(PAGE)),
        Ok(Party::Guest(0))
    );
    assert!(matches!(
        service.stage2_fault(Ipa(PAGE), Access::Read, &mut kernel),
        FaultOutcome::Refused { .. }
    ));
}

#[test]
fn bad_calls_return_distinct_errors_and_change_nothing() {
    use function::*;
    let mut backing = Backing::new(8);
    let mut service = backing.service(MappingPolicy::LargestBlock);
    let mut kernel = FakeKernel::default();
    let mut code_of =
        |service: &mut MemProtect<'_>, regs| service.host_call(&regs, &mut kernel).code;
    assert_eq!(
        code_of(&mut service, call(HOST_DONATE_GUEST, PAGE + 8, 1, 1)),
        code::INVALID_PARAMETER
    );
    assert_eq!(
        code_of(&mut service, call(HOST_DONATE_GUEST, PAGE, 0, 1)),
        code::INVALID_PARAMETER
    );
    assert_eq!(
        code_of(&mut service, call(HOST_DONATE_GUEST, 0x0900_0000, 1, 1)),
        code::INVALID_PARAMETER
    );
    assert_eq!(
        code_of(&mut service, call(HOST_DONATE_GUEST, HYP.start, 1, 1)),
        code::NOT_OWNED
    );
    assert_eq!(
        code_of(&mut service, call(HOST_RECLAIM, PAGE, 1, 1)),
        code::NOT_OWNED
    );
    assert_eq!(code_of(&mut service, call(HOST_SHARE_HYP, PAGE, 0, 0)), 0);
    assert_eq!(
        code_of(&mut service, call(HOST_SHARE_HYP, PAGE, 0, 0)),
        code::ALREADY_SHARED
    );
    assert_eq!(
        code_of(&mut service, call(HOST_DONATE_GUEST, PAGE, 1, 1)),
        code::ALREADY_SHARED
    );
    assert_eq!(code_of(&mut service, call(HOST_UNSHARE_HYP, PAGE, 0, 0)), 0);
    assert_eq!(
        code_of(&mut service, call(HOST_UNSHARE_HYP, PAGE, 0, 0)),
        code::NOT_SHARED
    );
    assert_eq!(
        code_of(&mut service, call(0x8400_0000, 0, 0, 0)),
        code::NOT_SUPPORTED
    );
    assert_eq!(service.ownership().owner(PhysAddr(PAGE)), Ok(Party::Host));
    assert!(matches!(
        service.stage2_fault(Ipa(PAGE), Access::Read, &mut kernel),
        FaultOutcome::Mapped(_)
    ));
}

#[test]
fn device_pool_exhaustion_recycles_then_fails_without_looping() {
    let mut backing = Backing::new(0);
    let mut service = backing.service(MappingPolicy::PageOnly);
    let mut kernel = FakeKernel::default();
    // A device far from RAM needs device-pool tables; there are none.
    let outcome = service.stage2_fault(
        Ipa(0x100_0000_0000 - PAGE_SIZE * 4 - (1 << 39)),
        Access::Read,
        &mut kernel,
    );
    assert_eq!(
        outcome,
        FaultOutcome::Failed(Stage2Error::OutOfTables(PoolKind::Device))
    );
    assert_eq!(service.stats().device_recycles, 1);
    assert!(kernel.invalidations.contains(&Invalidation::All));
}
