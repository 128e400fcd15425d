//! The interfaces of the system, one module each, every one defined with
//! [`interface!`](crate::interface), and the one list of them ([`for_each_interface!`](crate::for_each_interface),
//! [`ALL`]) that everything else derives its own from: the manifest's interface names, the
//! tests' coverage.
//!
//! Adding one: give it an id in [`abi::interface`](crate::abi::interface), define it in a new
//! module here and add it to [`for_each_interface!`](crate::for_each_interface). The tests then cover it (round trips,
//! decoder fuzzing) and fail until its schema hash is pinned in `ipc/tests/messages.rs`;
//! manifests can name it at once.

pub mod guest_trap;
pub mod mem_protect;
pub mod mmio_guard;
pub mod supervisor;

pub use guest_trap::GuestTrapInterface;
pub use mem_protect::MemProtectInterface;
pub use mmio_guard::MmioGuardInterface;
pub use supervisor::SupervisorInterface;

use crate::Interface;

/// Invokes the macro named by its argument with the path of every interface of the system,
/// comma-separated: `for_each_interface!(my_macro)` expands to
/// `my_macro! { $crate::interfaces::GuestTrapInterface, ... }`.
///
/// The one place that lists the interfaces; [`ALL`] and the tests are built from it.
///
/// ```
/// macro_rules! count {
///     ($($interface:path),* $(,)?) => { [$(stringify!($interface)),*].len() };
/// }
/// assert_eq!(hv_ipc::for_each_interface!(count), hv_ipc::interfaces::ALL.len());
/// ```
#[macro_export]
macro_rules! for_each_interface {
    ($($callback:tt)+) => {
        $($callback)+! {
            $crate::interfaces::GuestTrapInterface,
            $crate::interfaces::SupervisorInterface,
            $crate::interfaces::MmioGuardInterface,
            $crate::interfaces::MemProtectInterface,
        }
    };
}

/// What identifies an interface outside this crate: its name, id and schema hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Description {
    /// [`Interface::NAME`]: how manifests and logs call it (kebab-case).
    pub name: &'static str,
    /// [`Interface::ID`]: what the kernel routes calls by.
    pub id: u16,
    /// [`Interface::SCHEMA_HASH`]: what a hot-swap is checked against.
    pub schema_hash: u64,
}

impl Description {
    /// The description of interface `I`.
    pub const fn of<I: Interface>() -> Self {
        Description {
            name: I::NAME,
            id: I::ID,
            schema_hash: I::SCHEMA_HASH,
        }
    }
}

macro_rules! describe_all {
    ($($interface:path),* $(,)?) => {
        /// Every interface of the system, in [`for_each_interface!`](crate::for_each_interface) order.
        pub const ALL: &[Description] = &[$(Description::of::<$interface>()),*];
    };
}

crate::for_each_interface!(describe_all);

// Names and ids are keys (in manifests, in the kernel's routing): no two interfaces share one.
const _: () = {
    let mut first = 0;
    while first < ALL.len() {
        let mut second = first + 1;
        while second < ALL.len() {
            assert!(
                ALL[first].id != ALL[second].id,
                "two interfaces share an id"
            );
            assert!(
                !same_str(ALL[first].name, ALL[second].name),
                "two interfaces share a name"
            );
            second += 1;
        }
        first += 1;
    }
};

const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut index = 0;
    while index < a.len() {
        if a[index] != b[index] {
            return false;
        }
        index += 1;
    }
    true
}
