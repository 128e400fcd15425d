//! Random sequences of calls and checks against a simple model of each VM.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

/// The numbers of the granules VM `vm` has mapped, in ascending order.
fn mapped_granules(guard: &Guard, vm: u16) -> Vec<u64> {
    guard
        .mapped(vm)
        .iter()
        .flat_map(|range| range.first.0..range.end.0)
        .collect()
}

/// What a VM should look like, kept the simplest way.
#[derive(Debug)]
struct ModelVm {
    config: VmConfig,
    enrolled: bool,
    mapped: BTreeSet<u64>,
    refused: u64,
}

impl ModelVm {
    fn new(config: VmConfig) -> Self {
        Self {
            config,
            enrolled: config.mode == Mode::Enforced,
            mapped: BTreeSet::new(),
            refused: 0,
        }
    }

    /// Whether a granule next to `granule` is mapped.
    fn has_neighbour(&self, granule: u64) -> bool {
        granule
            .checked_sub(1)
            .is_some_and(|before| self.mapped.contains(&before))
            || self.mapped.contains(&(granule + 1))
    }

    /// Whether the mapped granules make up as many runs as a VM can have.
    fn full(&self) -> bool {
        let runs = self
            .mapped
            .iter()
            .filter(|&&granule| granule == 0 || !self.mapped.contains(&(granule - 1)))
            .count();
        runs == MAX_GRANULE_RANGES
    }

    fn is_mmio_ipa(&self, ipa: u64) -> bool {
        ipa.is_multiple_of(4096)
            && ipa < 1 << 48
            && !(self.config.ram_start..self.config.ram_end).contains(&ipa)
    }

    fn hypercall(&mut self, function: u32, args: [u64; 3]) -> [u64; 4] {
        let x0: i64 = if self.config.mode == Mode::Off {
            NOT_SUPPORTED
        } else {
            match function {
                HYP_MEMINFO | MMIO_GUARD_INFO if args == [0; 3] => 4096,
                HYP_MEMINFO | MMIO_GUARD_INFO => INVALID_PARAMETER,
                MMIO_GUARD_ENROLL => {
                    self.enrolled = true;
                    SUCCESS
                }
                MMIO_GUARD_MAP if self.is_mmio_ipa(args[0]) => {
                    let granule = args[0] / 4096;
                    // A granule between two unmapped ones starts a run of its own.
                    if self.mapped.contains(&granule) || self.has_neighbour(granule) || !self.full()
                    {
                        self.mapped.insert(granule);
                        SUCCESS
                    } else {
                        INVALID_PARAMETER
                    }
                }
                MMIO_GUARD_UNMAP if self.is_mmio_ipa(args[0]) => {
                    let granule = args[0] / 4096;
                    // A granule between two mapped ones splits their run.
                    let splits = self.mapped.contains(&granule)
                        && granule
                            .checked_sub(1)
                            .is_some_and(|before| self.mapped.contains(&before))
                        && self.mapped.contains(&(granule + 1));
                    if splits && self.full() {
                        INVALID_PARAMETER
                    } else {
                        self.mapped.remove(&granule);
                        SUCCESS
                    }
                }
                MMIO_GUARD_MAP | MMIO_GUARD_UNMAP => INVALID_PARAMETER,
                _ => NOT_SUPPORTED,
            }
        };
        [x0 as u64, 0, 0, 0]
    }

    fn check(&mut self, ipa: u64, len: u64) -> Verdict {
        let well_formed = (1..=8).contains(&len) && ipa.checked_add(len - 1).is_some();
        let allowed = well_formed
            && (self.config.mode == Mode::Off
                || !self.enrolled
                || (self.mapped.contains(&(ipa / 4096))
                    && self.mapped.contains(&((ipa + len - 1) / 4096))));
        if !allowed {
            self.refused += 1;
        }
        Verdict {
            allowed,
            enrolled: self.enrolled,
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Call {
        vm: u16,
        function: u32,
        args: [u64; 3],
    },
    Check {
        vm: u16,
        ipa: u64,
        len: u64,
    },
}

/// Device granules the random calls map and unmap: few, so runs join and split often. (Full
/// sets are tested with random calls in `ranges::tests`, with a capacity of a few ranges.)
const DEVICE_POOL: u64 = 80;

/// IPAs around a pool of device granules, RAM and the IPA limit.
fn ipa() -> impl Strategy<Value = u64> {
    let device = (0..DEVICE_POOL).prop_map(|index| 0x1000_0000 + index * 4096);
    let ram = (0..8u64).prop_map(|index| RAM_START + index * 0x80_0000);
    let edge = prop_oneof![
        Just(RAM_END),
        Just(RAM_START - 4096),
        Just(IPA_LIMIT - 4096),
        Just(IPA_LIMIT),
        Just(!0xfffu64),
    ];
    let base = prop_oneof![6 => device, 1 => ram, 1 => edge];
    let offset = prop_oneof![4 => Just(0u64), 1 => 1..4096u64, 1 => Just(4096 - 4)];
    (base, offset).prop_map(|(base, offset)| base.wrapping_add(offset))
}

fn op() -> impl Strategy<Value = Op> {
    let vm = prop_oneof![4 => Just(OPTIONAL_VM), 2 => Just(ENFORCED_VM), 1 => Just(OFF_VM)];
    let function = prop_oneof![
        1 => Just(HYP_MEMINFO),
        1 => Just(MMIO_GUARD_INFO),
        1 => Just(MMIO_GUARD_ENROLL),
        8 => Just(MMIO_GUARD_MAP),
        4 => Just(MMIO_GUARD_UNMAP),
        1 => any::<u32>(),
    ];
    let extra = prop_oneof![3 => Just(0u64), 1 => any::<u64>()];
    prop_oneof![
        (vm.clone(), function, ipa(), extra.clone(), extra).prop_map(
            |(vm, function, x1, x2, x3)| {
                // Reserved arguments are mostly zero, so INFO and MEMINFO mostly succeed.
                let x1 = if matches!(function, HYP_MEMINFO | MMIO_GUARD_INFO) && x2 == 0 {
                    0
                } else {
                    x1
                };
                Op::Call {
                    vm,
                    function,
                    args: [x1, x2, x3],
                }
            }
        ),
        (vm, ipa(), 0..=9u64).prop_map(|(vm, ipa, len)| Op::Check { vm, ipa, len }),
    ]
}

/// Mostly single operations, sometimes a burst of MAPs of consecutive device granules, as
/// Linux maps a device.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    let burst = (0..2u16, 0..DEVICE_POOL, 8..DEVICE_POOL).prop_map(|(vm, first, count)| {
        (first..first + count)
            .map(|index| Op::Call {
                vm,
                function: MMIO_GUARD_MAP,
                args: [0x1000_0000 + index * 4096, 0, 0],
            })
            .collect::<Vec<_>>()
    });
    let step = prop_oneof![12 => op().prop_map(|op| vec![op]), 1 => burst];
    proptest::collection::vec(step, 1..200).prop_map(|steps| steps.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_calls_match_the_model(ops in ops()) {
        let mut guard = guard();
        let mut model: Vec<ModelVm> = TABLE.iter().copied().map(ModelVm::new).collect();
        for op in &ops {
            match *op {
                Op::Call { vm, function, args } => {
                    let before = mapped_granules(&guard, vm).len();
                    let answer = call(&mut guard, vm, function, args);
                    let expected = model[usize::from(vm)].hypercall(function, args);
                    prop_assert_eq!(answer.regs, expected, "{:x?}", op);
                    // A change is reported exactly when the set or the enrolment changed.
                    let after = mapped_granules(&guard, vm).len();
                    match answer.change {
                        Some(Change::Mapped(_)) => prop_assert_eq!(after, before + 1),
                        Some(Change::Unmapped(_)) => prop_assert_eq!(after + 1, before),
                        Some(Change::Enrolled) | None => prop_assert_eq!(after, before),
                    }
                }
                Op::Check { vm, ipa, len } => {
                    let verdict = guard.check(vm, Ipa(ipa), len);
                    prop_assert_eq!(verdict, model[usize::from(vm)].check(ipa, len), "{:x?}", op);
                }
            }
            for expected in &model {
                let vm = expected.config.vm;
                let mapped: Vec<u64> = expected.mapped.iter().copied().collect();
                prop_assert_eq!(mapped_granules(&guard, vm), mapped);
                prop_assert_eq!(guard.is_enrolled(vm), expected.enrolled);
                prop_assert_eq!(guard.refused(vm), expected.refused);
            }
        }
    }
}
