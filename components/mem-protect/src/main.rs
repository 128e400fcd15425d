//! The memory-protection component: builds the host's stage 2 lazily, keeps page ownership,
//! and gives guest VMs their memory and stage 2.
//!
//! It answers `guest-trap` calls, routed to it:
//!
//! - `GuestTrap::Stage2Fault` (routed by `"host-stage2"`): a host access its stage 2 does not
//!   translate. Mapped (identity: the largest block and the table fill, or one page, by the
//!   build-time policy) and answered `Resume`, or refused with `InjectHostAbort` (the page is
//!   someone else's, or the tables ran out). See `hv_mem_protect::service`.
//! - `GuestTrap::Smccc` from the host: HOST_SHARE_HYP, HOST_UNSHARE_HYP, HOST_DONATE_GUEST,
//!   HOST_RECLAIM, HOST_GUEST_SHARED (`0xC600_0090..=0xC600_0094`), answered with `Return`
//!   (x0 = the code, x1..x2 HOST_GUEST_SHARED's answer); from a guest VM, NOT_SUPPORTED.
//! - `GuestTrap::Smccc` from a guest VM: MEM_SHARE and MEM_UNSHARE (`0xC600_0003..=0xC600_0004`),
//!   answered with `Return` (x0 = the code); from the host, NOT_SUPPORTED. Each is logged at
//!   debug level when done (`mem-protect: vm<v> vcpu<c> share ipa <ipa> pa <pa>: done`), at
//!   warn level when refused (`... share ipa <ipa>: refused <code>`).
//!
//! and serves `mem-protect` (`MemProtectInterface`) to the VM manager: AddMemslot, MapDevice and
//! WipeVm for the guest VMs of its configuration (see `hv_mem_protect::service`'s guest module).
//! Each memslot added is logged at info level as
//! `mem-protect: vm<v> memslot ipa <ipa> pa <pa> size <size>: <n> leaves (l1 <a> l2 <b> l3 <c>), <t> tables`.
//!
//! # The pool and the host's VTTBR
//!
//! `HOST_STAGE2_POOL` (exported, unmangled) holds the memory pool's tables first, then the
//! device pool's; the kernel loads the host's VTTBR with its physical address before this
//! component ever runs. That works because the pool's first table is the root: the region is
//! zeroed before the component starts (an all-zero table is an empty root), and
//! `HostStage2::new` takes the root as the first table of a new memory pool (it refuses a pool
//! with tables in use, and allocates in order). `main` checks `root_pa()` against the symbol
//! before serving and stops the component if they differ.
//!
//! # The guests' roots
//!
//! `GUEST_STAGE2_ROOTS` (exported, unmangled, page aligned) holds one root table per guest VM:
//! guest VM v's is at `GUEST_STAGE2_ROOTS + (v - 1) * 4096`, and the kernel loads VTTBR_EL2 with
//! it and VMID `16 + v`. The composer reads the symbol into each guest's boot-table entry. A
//! guest's other tables come from `GUEST_STAGE2_POOL`, split between the guests by the shares
//! `build.rs` computed from the configuration.
//!
//! The component runs with its MMU off, so an address in its image is its physical address.
//!
//! What it serves comes from its configuration (`hv_component_rt::config()`, see
//! `hv_mem_protect::layout`); `build.rs` sizes the static pools from the same configuration.
//!
//! Everything but the host build's empty `main` exists only for `target_os = "none"`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod component {
    //! The component proper: setup and the server loop around `hv_mem_protect::service`.

    use defmt::{debug, error, info, warn};
    use hv_component_rt::hv_component_config::{CrashHook, CrashKind};
    use hv_component_rt::hv_ipc;
    use hv_component_rt::hv_ipc::abi::{MESSAGE_MAX, kernel_op};
    use hv_component_rt::hv_ipc::addr::Ipa;
    use hv_component_rt::hv_ipc::interfaces::guest_trap::{
        Conduit, GuestTrapInterface, GuestTrapServer, TrapResolution,
    };
    use hv_component_rt::hv_ipc::interfaces::mem_protect::{
        MemProtectInterface, MemProtectRefusal, MemProtectReply, MemProtectServer,
    };
    use hv_component_rt::{Ipc, Server, StartInfo, serve_forever, syscall};
    use hv_mem_protect::layout::{guest_ipa_bits, guest_layouts, host_layout};
    use hv_mem_protect::ownership::{OwnershipTable, PAGE_SIZE, Party, PhysAddr};
    use hv_mem_protect::service::{
        self, FaultOutcome, GuestCall, GuestInvalidation, GuestVm, Guests, HostCall, Kernel,
        MemProtect,
    };
    use hv_mem_protect::stage2::{
        Access, GuestStage2, HostStage2, Invalidation, IpaRange, Mapped, MemoryMap, PoolKind,
        Stage2Error, TABLE_ENTRIES, Table, TablePools,
    };

    mod config {
        //! The pool sizes `build.rs` derived from the configuration.
        include!(concat!(env!("OUT_DIR"), "/pool_sizes.rs"));
    }

    /// The IPA size the host's stage 2 serves (the kernel's VTCR covers at least 40 bits).
    const IPA_BITS: u8 = 40;

    /// The table pools: the memory pool first (its first table is the host's root), then the
    /// device pool.
    #[repr(C, align(4096))]
    pub struct Stage2Pool {
        memory: [Table; config::MEMORY_TABLES],
        device: [Table; config::DEVICE_TABLES],
    }

    /// The host's stage-2 tables. The kernel takes this symbol's address as the host's VTTBR.
    #[unsafe(no_mangle)]
    #[used]
    static mut HOST_STAGE2_POOL: Stage2Pool = Stage2Pool {
        memory: [[0; TABLE_ENTRIES]; config::MEMORY_TABLES],
        device: [[0; TABLE_ENTRIES]; config::DEVICE_TABLES],
    };

    /// One ownership byte per page of the host's RAM.
    static mut OWNERSHIP: [u8; config::RAM_PAGES] = [0; config::RAM_PAGES];

    /// Page-aligned tables.
    #[repr(C, align(4096))]
    pub struct Tables<const N: usize>([Table; N]);

    /// The guests' stage-2 roots, guest VM v's at index v - 1. The composer reads this symbol
    /// into the boot table; the kernel loads VTTBR_EL2 with a root and the guest's VMID.
    #[unsafe(no_mangle)]
    #[used]
    static mut GUEST_STAGE2_ROOTS: Tables<{ config::GUEST_ROOTS }> =
        Tables([[0; TABLE_ENTRIES]; config::GUEST_ROOTS]);

    /// The guests' other stage-2 tables: guest VM v's share (`GUEST_TABLES[v - 1]`) after the
    /// shares of the guests numbered below it.
    static mut GUEST_STAGE2_POOL: Tables<{ config::GUEST_POOL_TABLES }> =
        Tables([[0; TABLE_ENTRIES]; config::GUEST_POOL_TABLES]);

    hv_component_rt::component_main!(main);

    fn main(info: StartInfo, mut ipc: Ipc) -> ! {
        let layout = match host_layout(hv_component_rt::config()) {
            Ok(layout) => layout,
            Err(error) => panic!("mem-protect: cannot serve this system: {:?}", error),
        };
        info!(
            "mem-protect: component {=usize} up (start {=u64}), RAM {=u64:#x}..{=u64:#x}",
            info.index, info.start_count, layout.ram.start, layout.ram.end
        );
        if info.start_count > 0 {
            error!(
                "mem-protect: restarted: the host's stage 2 and page ownership are lost (its restart policy must be `never`)"
            );
        }
        let pool_ptr = &raw mut HOST_STAGE2_POOL;
        let records_ptr = &raw mut OWNERSHIP;
        // SAFETY: `main` runs once per start and is the only code that names these statics;
        // the references live for the rest of the component's life and no other exists. The
        // kernel only reads the pool (the host's walker); it never writes it.
        let (pool, records) = unsafe { (&mut *pool_ptr, &mut *records_ptr) };
        let symbol = &raw const HOST_STAGE2_POOL as u64;
        let memory_pa = pool.memory.as_ptr() as u64;
        let device_pa = pool.device.as_ptr() as u64;

        let mut ownership = match OwnershipTable::new(PhysAddr(layout.ram.start), records) {
            Ok(table) => table,
            Err(_) => panic!("mem-protect: bad RAM range"),
        };
        for range in &layout.reserved {
            if ownership
                .reserve_for_hypervisor(PhysAddr(range.start)..PhysAddr(range.end))
                .is_err()
            {
                panic!("mem-protect: cannot reserve a hypervisor range");
            }
        }
        // Belt and braces: this component's own region (the tables above all) is never the
        // host's, whatever the reserved ranges say.
        let region = IpaRange::sized(info.region_base as u64, info.region_size as u64);
        let mut own_pages = 0u64;
        for page in (region.start..region.end).step_by(PAGE_SIZE as usize) {
            if ownership.owner(PhysAddr(page)) == Ok(Party::Host) {
                let _ =
                    ownership.reserve_for_hypervisor(PhysAddr(page)..PhysAddr(page + PAGE_SIZE));
                own_pages += 1;
            }
        }
        if own_pages > 0 {
            warn!(
                "mem-protect: {=u64} pages of its own region were not in the hypervisor range; reserved now",
                own_pages
            );
        }

        let map = match MemoryMap::new(core::slice::from_ref(&layout.ram), IPA_BITS) {
            Ok(map) => map,
            Err(_) => panic!("mem-protect: bad memory map"),
        };
        let pools = match TablePools::new(&mut pool.memory, memory_pa, &mut pool.device, device_pa)
        {
            Ok(pools) => pools,
            Err(_) => panic!("mem-protect: bad table pools"),
        };
        let stage2 = match HostStage2::new(pools, map, layout.policy) {
            Ok(stage2) => stage2,
            Err(_) => panic!("mem-protect: the memory pool is too small"),
        };
        if stage2.root_pa() != symbol {
            panic!("mem-protect: the root is not HOST_STAGE2_POOL's first table");
        }
        let state = MemProtect::new(ownership, stage2, &layout.reserved, &layout.device_holes)
            .with_guests(guests());
        info!(
            "mem-protect: root {=u64:#x}, {=usize} memory tables, {=usize} device tables, policy {=str}",
            symbol,
            config::MEMORY_TABLES,
            config::DEVICE_TABLES,
            state.policy_name()
        );
        serve_forever(
            &mut ipc,
            &mut Component {
                state,
                footprint_logged: None,
                faults_served: 0,
                guest_calls_done: [(0, 0); 8],
                crash: hv_component_rt::config()
                    .settings
                    .mem_protect()
                    .crash
                    .filter(|_| info.start_count == 0),
            },
        )
    }

    /// The guest VMs of the configuration, each with its root and its share of the pool.
    fn guests() -> Guests<'static> {
        let layouts = match guest_layouts(hv_component_rt::config()) {
            Ok(layouts) => layouts,
            Err(error) => panic!("mem-protect: cannot serve these guests: {:?}", error),
        };
        let roots_ptr = &raw mut GUEST_STAGE2_ROOTS;
        let pool_ptr = &raw mut GUEST_STAGE2_POOL;
        // SAFETY: `main` calls this once per start and nothing else names these statics; the
        // references live for the rest of the component's life and no other exists. The
        // kernel only reads the tables (the guests' walkers).
        let (roots, pool) = unsafe { (&mut (*roots_ptr).0, &mut (*pool_ptr).0) };
        let mut rest: &mut [Table] = pool;
        let mut guests = Guests::new();
        for ((index, root), &tables) in roots.iter_mut().enumerate().zip(&config::GUEST_TABLES) {
            let Some((share, after)) = core::mem::take(&mut rest).split_at_mut_checked(tables)
            else {
                panic!("mem-protect: the guest pool is smaller than its shares");
            };
            rest = after;
            let vm = index as u16 + 1;
            let Some(layout) = layouts.iter().find(|guest| guest.vm == vm) else {
                continue;
            };
            let (root_pa, share_pa) = (root.as_ptr() as u64, share.as_ptr() as u64);
            let ipa_bits = guest_ipa_bits(layout.shared_bit);
            let stage2 = match GuestStage2::new(root, root_pa, share, share_pa, ipa_bits) {
                Ok(stage2) => stage2,
                Err(_) => panic!("mem-protect: bad guest tables for vm{}", vm),
            };
            info!(
                "mem-protect: vm{=u16} stage-2 root {=u64:#x}, {=usize} tables",
                vm, root_pa, tables
            );
            let mut guest = GuestVm::new(vm, layout.devices.clone(), stage2);
            if let Some(bit) = layout.shared_bit {
                guest = match guest.with_shared_bit(bit) {
                    Some(guest) => guest,
                    None => panic!("mem-protect: vm{} cannot use shared IPA bit {}", vm, bit),
                };
                info!(
                    "mem-protect: vm{=u16} shared IPA bit {=u8}, {=u8}-bit stage 2",
                    vm, bit, ipa_bits
                );
            }
            if guests.push(guest).is_err() {
                panic!("mem-protect: too many guests");
            }
        }
        if guests.len() != layouts.len() {
            panic!("mem-protect: a guest has no stage-2 root");
        }
        guests
    }

    /// The kernel operations the manifest grants this component.
    struct KernelOps;

    impl Kernel for KernelOps {
        fn invalidate(&mut self, what: Invalidation) {
            let (ipa, len) = match what {
                Invalidation::Range(range) => (range.start, range.len()),
                Invalidation::All => (0, u64::MAX),
            };
            if let Err(error) = syscall::kernel_op(kernel_op::HOST_TLB_INVALIDATE, [ipa, len, 0, 0])
            {
                error!(
                    "mem-protect: HOST_TLB_INVALIDATE {=u64:#x}+{=u64:#x} failed: {=i64}",
                    ipa,
                    len,
                    error.code()
                );
            }
        }

        fn invalidate_guest(&mut self, vm: u16, what: GuestInvalidation) {
            let ipa = match what {
                GuestInvalidation::Page(ipa) => ipa,
                GuestInvalidation::All => u64::MAX,
            };
            if let Err(error) =
                syscall::kernel_op(kernel_op::GUEST_TLB_INVALIDATE, [u64::from(vm), ipa, 0, 0])
            {
                error!(
                    "mem-protect: GUEST_TLB_INVALIDATE vm{=u16} ipa {=u64:#x} failed: {=i64}",
                    vm,
                    ipa,
                    error.code()
                );
            }
        }

        fn zero_pages(&mut self, start: u64, len: u64) -> bool {
            match syscall::kernel_op(kernel_op::ZERO_PAGES, [start, len, 0, 0]) {
                Ok(_) => true,
                Err(error) => {
                    error!(
                        "mem-protect: ZERO_PAGES {=u64:#x}+{=u64:#x} failed: {=i64}",
                        start,
                        len,
                        error.code()
                    );
                    false
                }
            }
        }
    }

    struct Component<'a> {
        state: MemProtect<'a>,
        /// The footprint (memory and device tables, recycles, 1 GiB and 2 MiB blocks) the last
        /// summary showed.
        footprint_logged: Option<(usize, usize, u64, u64, u64)>,
        /// Host stage-2 faults this instance served, for the test crash hook.
        faults_served: u64,
        /// Successful MEM_SHARE and MEM_UNSHARE calls per guest VM (by id), for the log: a guest
        /// shares page by page (Linux its DMA pools at boot), so only powers of two are logged.
        guest_calls_done: [(u64, u64); 8],
        /// The test crash hook (settings), armed in the first instance only.
        crash: Option<CrashHook>,
    }

    /// A party's name and number, for the log.
    fn owner_name(owner: Option<Party>) -> (&'static str, u8) {
        match owner {
            Some(Party::Host) => ("host", 0),
            Some(Party::Hypervisor) => ("hypervisor", 0),
            Some(Party::Guest(guest)) => ("guest", guest),
            None => ("no-one (device hole)", 0),
        }
    }

    fn error_name(error: Stage2Error) -> &'static str {
        match error {
            Stage2Error::OutsideIpaSpace(_) => "outside the IPA space",
            Stage2Error::Misaligned(_) => "misaligned",
            Stage2Error::NotHostOwned(_) | Stage2Error::OwnedBy(_) => "not the host's",
            Stage2Error::OutOfTables(PoolKind::Memory) => "out of memory-pool tables",
            Stage2Error::OutOfTables(PoolKind::Device) => {
                "out of device-pool tables after a recycle"
            }
            Stage2Error::NotPermitted { .. } => "mapped, but not for this access",
            Stage2Error::Corrupt { .. } => "corrupt tables",
        }
    }

    fn refusal_name(refusal: &MemProtectRefusal) -> &'static str {
        match refusal {
            MemProtectRefusal::NotAGuest => "not a guest",
            MemProtectRefusal::BadRange => "bad range",
            MemProtectRefusal::NotHostOwned => "not the host's to give",
            MemProtectRefusal::Overlaps => "overlaps",
            MemProtectRefusal::TooManySlots => "too many slots",
            MemProtectRefusal::OutOfTables => "out of tables",
            MemProtectRefusal::WipeFailed => "wipe failed",
        }
    }

    /// Logs a refused AddMemslot (`what` = "memslot") or MapDevice ("device") and answers it.
    fn refused(
        what: &str,
        vm: u16,
        ipa: u64,
        pa: u64,
        size: u64,
        reason: MemProtectRefusal,
    ) -> MemProtectReply {
        warn!(
            "mem-protect: vm{=u16} {=str} ipa {=u64:#x} pa {=u64:#x} size {=u64:#x} refused: {=str}",
            vm,
            what,
            ipa,
            pa,
            size,
            refusal_name(&reason)
        );
        MemProtectReply::Refused { reason }
    }

    impl Component<'_> {
        /// The statistics line: at info level (the summary the tests and the benchmark read)
        /// when the footprint changed since the last one or `always`, else at debug level.
        /// The footprint is the tables and the blocks (levels 1 and 2): the page-only policy
        /// maps none, so its page faults stay at debug level, and the largest-block policy
        /// maps blocks in a handful of faults, so its summary stays short. The last info line
        /// of a run therefore holds its final table and block counts (its page count may lag:
        /// a page fault that makes no table is logged at debug level); fault totals are the
        /// kernel's trap counts.
        fn log_stats(&mut self, always: bool) {
            let stats = self.state.stats();
            let footprint = (
                stats.memory_tables,
                stats.device_tables,
                stats.device_recycles,
                stats.blocks_mapped[1],
                stats.blocks_mapped[2],
            );
            if !always && self.footprint_logged == Some(footprint) {
                debug!(
                    "stage2-fault faults={=u64} l1-blocks={=u64} l2-blocks={=u64} l3-pages={=u64}",
                    stats.faults,
                    stats.blocks_mapped[1],
                    stats.blocks_mapped[2],
                    stats.blocks_mapped[3]
                );
                return;
            }
            self.footprint_logged = Some(footprint);
            info!(
                "stage2-stats faults={=u64} memory-tables={=u64} device-tables={=u64} l1-blocks={=u64} l2-blocks={=u64} l3-pages={=u64} recycles={=u64} policy={=str}",
                stats.faults,
                stats.memory_tables as u64,
                stats.device_tables as u64,
                stats.blocks_mapped[1],
                stats.blocks_mapped[2],
                stats.blocks_mapped[3],
                stats.device_recycles,
                self.state.policy_name()
            );
        }

        fn host_call(&mut self, vm: u16, vcpu: u16, regs: [u64; 8]) -> TrapResolution {
            let function = regs[0] as u32;
            if vm != 0 {
                warn!(
                    "mem-protect: vm{=u16} made host call {=u32:#x}; refused",
                    vm, function
                );
                return TrapResolution::results([service::code::NOT_SUPPORTED as u64, 0, 0, 0]);
            }
            let outcome = self.state.host_call(&regs, &mut KernelOps);
            if outcome.table_failures > 0 {
                error!(
                    "mem-protect: host call {=u32:#x} x1 {=u64:#x}: {=u64} pages left unmapped instead of annotated",
                    function, regs[1], outcome.table_failures
                );
            }
            let name = match outcome.call {
                Some(HostCall::ShareHyp { .. }) => "share",
                Some(HostCall::UnshareHyp { .. }) => "unshare",
                Some(HostCall::DonateGuest { .. }) => "donate",
                Some(HostCall::Reclaim { .. }) => "reclaim",
                Some(HostCall::GuestShared { .. }) => "guest-shared",
                None => "call",
            };
            let query = matches!(outcome.call, Some(HostCall::GuestShared { .. }));
            if outcome.code == service::code::SUCCESS && query {
                // Asked once per page shared: not worth an info line each.
                debug!(
                    "mem-protect: vcpu{=u16} guest-shared vm{=u64} n {=u64}: pa {=u64:#x} of {=u64}",
                    vcpu, regs[1], regs[2], outcome.results[0], outcome.results[1]
                );
            } else if outcome.code == service::code::SUCCESS {
                info!(
                    "mem-protect: vcpu{=u16} {=str} x1 {=u64:#x} x2 {=u64} x3 {=u64}: done",
                    vcpu, name, regs[1], regs[2], regs[3]
                );
            } else {
                debug!(
                    "mem-protect: vcpu{=u16} {=str} ({=u32:#x}) x1 {=u64:#x} x2 {=u64} x3 {=u64}: {=i64}",
                    vcpu, name, function, regs[1], regs[2], regs[3], outcome.code
                );
            }
            let [x1, x2, x3] = outcome.results;
            TrapResolution::results([outcome.code as u64, x1, x2, x3])
        }

        /// A guest VM's MEM_SHARE or MEM_UNSHARE (the host's get NOT_SUPPORTED).
        fn guest_call(&mut self, vm: u16, vcpu: u16, regs: [u64; 8]) -> TrapResolution {
            let function = regs[0] as u32;
            if vm == 0 {
                warn!(
                    "mem-protect: the host made guest call {=u32:#x}; refused",
                    function
                );
                return TrapResolution::results([service::code::NOT_SUPPORTED as u64, 0, 0, 0]);
            }
            let outcome = self.state.guest_call(vm, &regs, &mut KernelOps);
            let name = match outcome.call {
                Some(GuestCall::Share { .. }) => "share",
                Some(GuestCall::Unshare { .. }) => "unshare",
                None => "call",
            };
            let pa = outcome.page.map_or(0, |page| page.0);
            if outcome.code == service::code::SUCCESS {
                debug!(
                    "mem-protect: vm{=u16} vcpu{=u16} {=str} ipa {=u64:#x} pa {=u64:#x}: done",
                    vm, vcpu, name, regs[1], pa
                );
                if let Some(done) = self.guest_calls_done.get_mut(usize::from(vm)) {
                    let count = match outcome.call {
                        Some(GuestCall::Unshare { .. }) => &mut done.1,
                        _ => &mut done.0,
                    };
                    *count += 1;
                    if count.is_power_of_two() {
                        info!(
                            "mem-protect: vm{=u16} guest-sharing shares={=u64} unshares={=u64}",
                            vm, done.0, done.1
                        );
                    }
                }
            } else {
                warn!(
                    "mem-protect: vm{=u16} vcpu{=u16} {=str} ({=u32:#x}) ipa {=u64:#x} x2 {=u64} x3 {=u64}: refused {=i64}",
                    vm, vcpu, name, function, regs[1], regs[2], regs[3], outcome.code
                );
            }
            if outcome.table_failures > 0 {
                error!(
                    "mem-protect: vm{=u16} {=str} pa {=u64:#x}: {=u64} table changes failed after the commit",
                    vm, name, pa, outcome.table_failures
                );
            }
            TrapResolution::results([outcome.code as u64, 0, 0, 0])
        }
    }

    impl GuestTrapServer for Component<'_> {
        /// Guests' MEM_SHARE / MEM_UNSHARE and the host's page-ownership calls.
        fn smccc(
            &mut self,
            vm: u16,
            vcpu: u16,
            _conduit: Conduit,
            regs: [u64; 8],
        ) -> TrapResolution {
            match regs[0] as u32 {
                service::function::MEM_SHARE | service::function::MEM_UNSHARE => {
                    self.guest_call(vm, vcpu, regs)
                }
                _ => self.host_call(vm, vcpu, regs),
            }
        }

        fn stage2_fault(
            &mut self,
            vm: u16,
            vcpu: u16,
            ipa: Ipa,
            far: u64,
            write: bool,
            instruction: bool,
            _from_el0: bool,
        ) -> TrapResolution {
            if vm != 0 {
                warn!(
                    "mem-protect: stage-2 fault from vm{=u16} routed here; only the host's are served",
                    vm
                );
                return TrapResolution::InjectHostAbort;
            }
            self.faults_served += 1;
            if let Some(hook) = self.crash
                && u64::from(hook.on_call) == self.faults_served
            {
                warn!(
                    "mem-protect: crash hook fires on stage-2 fault {=u64}",
                    self.faults_served
                );
                match hook.kind {
                    CrashKind::Panic => panic!("crash hook: fault {}", self.faults_served),
                    // An SMCCC answer to a stage-2 fault: the kernel must refuse it.
                    CrashKind::Misanswer => return TrapResolution::results([0; 4]),
                    _ => hv_component_rt::arch::udf(),
                }
            }
            let access = match (instruction, write) {
                (true, _) => Access::Fetch,
                (false, true) => Access::Write,
                (false, false) => Access::Read,
            };
            let outcome = self.state.stage2_fault(ipa, access, &mut KernelOps);
            let resolution = match outcome {
                FaultOutcome::Mapped(mapped) => {
                    if let Mapped::New {
                        range,
                        level,
                        recycled,
                        filled,
                        ..
                    } = mapped
                    {
                        debug!(
                            "mem-protect: vcpu{=u16} ipa {=u64:#x}: mapped {=u64:#x}..{=u64:#x} at level {=u8}, filled l1={=u16} l2={=u16} l3={=u16}",
                            vcpu,
                            ipa.0,
                            range.start,
                            range.end,
                            level,
                            filled[1],
                            filled[2],
                            filled[3]
                        );
                        if recycled {
                            info!("mem-protect: device pool recycled");
                        }
                    }
                    TrapResolution::Resume
                }
                FaultOutcome::Refused { owner, .. } => {
                    let (name, number) = owner_name(owner);
                    warn!(
                        "mem-protect: vcpu{=u16} {=str} at ipa {=u64:#x} (far {=u64:#x}) refused: owned by {=str} {=u8} ({=u64} refused so far)",
                        vcpu,
                        if instruction {
                            "fetch"
                        } else if write {
                            "write"
                        } else {
                            "read"
                        },
                        ipa.0,
                        far,
                        name,
                        number,
                        self.state.stats().refused
                    );
                    TrapResolution::InjectHostAbort
                }
                FaultOutcome::Failed(error) => {
                    error!(
                        "mem-protect: vcpu{=u16} ipa {=u64:#x} (far {=u64:#x}) cannot be mapped: {=str}; abort injected",
                        vcpu,
                        ipa.0,
                        far,
                        error_name(error)
                    );
                    TrapResolution::InjectHostAbort
                }
            };
            self.log_stats(resolution == TrapResolution::InjectHostAbort);
            resolution
        }
    }

    /// Guest memory, asked by the VM manager.
    impl MemProtectServer for Component<'_> {
        fn add_memslot(&mut self, vm: u16, ipa: u64, pa: u64, size: u64) -> MemProtectReply {
            match self.state.add_memslot(vm, ipa, pa, size, &mut KernelOps) {
                Ok(added) => {
                    let leaves = added.leaves.iter().sum();
                    info!(
                        "mem-protect: vm{=u16} memslot ipa {=u64:#x} pa {=u64:#x} size {=u64:#x}: {=u64} leaves (l1 {=u64} l2 {=u64} l3 {=u64}), {=usize} tables",
                        vm,
                        ipa,
                        pa,
                        size,
                        leaves,
                        added.leaves[1],
                        added.leaves[2],
                        added.leaves[3],
                        added.tables
                    );
                    if added.host_failures > 0 {
                        error!(
                            "mem-protect: vm{=u16} memslot pa {=u64:#x}: {=u64} host pages left unmapped instead of annotated",
                            vm, pa, added.host_failures
                        );
                    }
                    if added.mapping_error.is_some() {
                        error!(
                            "mem-protect: vm{=u16} memslot ipa {=u64:#x}: the stage 2 failed to write what it reserved",
                            vm, ipa
                        );
                    }
                    MemProtectReply::Done { leaves }
                }
                Err(reason) => refused("memslot", vm, ipa, pa, size, reason),
            }
        }

        fn map_device(&mut self, vm: u16, ipa: u64, pa: u64, size: u64) -> MemProtectReply {
            match self.state.map_device(vm, ipa, pa, size) {
                Ok(leaves) => {
                    let leaves = leaves.iter().sum();
                    info!(
                        "mem-protect: vm{=u16} device ipa {=u64:#x} pa {=u64:#x} size {=u64:#x}: {=u64} leaves",
                        vm, ipa, pa, size, leaves
                    );
                    MemProtectReply::Done { leaves }
                }
                Err(reason) => refused("device", vm, ipa, pa, size, reason),
            }
        }

        fn wipe_vm(&mut self, vm: u16) -> MemProtectReply {
            match self.state.wipe_vm(vm, &mut KernelOps) {
                Ok(wiped) => {
                    info!(
                        "mem-protect: vm{=u16} wiped ({=u64:#x} bytes, {=u64} shared pages unshared first)",
                        vm, wiped.bytes, wiped.unshared
                    );
                    if wiped.table_failures > 0 {
                        error!(
                            "mem-protect: vm{=u16} wipe: {=u64} table changes failed unsharing",
                            vm, wiped.table_failures
                        );
                    }
                    MemProtectReply::Done { leaves: 0 }
                }
                Err(reason) => {
                    warn!(
                        "mem-protect: vm{=u16} wipe refused: {=str}",
                        vm,
                        refusal_name(&reason)
                    );
                    MemProtectReply::Refused { reason }
                }
            }
        }
    }

    impl Server for Component<'_> {
        fn handle_call(
            &mut self,
            _sender: u64,
            interface: u16,
            request: &[u8],
            reply: &mut [u8; MESSAGE_MAX],
        ) -> usize {
            hv_ipc::dispatch::<(GuestTrapInterface, MemProtectInterface), _>(
                self, interface, request, reply,
            )
        }

        /// Its state is the system's memory map: every page's owner and every stage 2 it
        /// wrote, which the hardware walks at this moment. A new instance would have to take it
        /// over exactly or the isolation it guards breaks, so it is never swapped (the swap is
        /// refused before anything changes; docs/hot-swap.md).
        fn swap_state(&self) -> hv_component_rt::SwapState {
            hv_component_rt::SwapState::NotSwappable
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
