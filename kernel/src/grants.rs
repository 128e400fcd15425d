//! What the manifest lets a component ask of the kernel: the grant checks of the system calls
//! (docs/ipc.md, "System calls"), decided from the component's boot-table descriptor alone.
//!
//! Each grant is a bit set the composer built from the manifest's `calls`, `kernel-ops` and
//! `notifies`; a call outside it is refused with [`SyscallError::NotAllowed`] before the kernel
//! looks at the target, so an ungranted caller learns nothing about it. The
//! kernel's own notifications (`NOTIFY_COMPONENT_FAULTED` to the supervisor) are not system
//! calls and need no grant.

use hv_abi::ComponentDescriptor;
use hv_ipc::abi::SyscallError;

/// Whether a grant's bit set holds bit `bit` (a bit past the set's width is never granted).
fn granted(set: u32, bit: u64) -> bool {
    bit < u64::from(u32::BITS) && set & (1 << bit) != 0
}

/// CALL: `caller` may call `interface` only if its manifest `calls` lists it.
pub fn check_call(caller: &ComponentDescriptor, interface: u16) -> Result<(), SyscallError> {
    if granted(caller.may_call, u64::from(interface)) {
        Ok(())
    } else {
        Err(SyscallError::NotAllowed)
    }
}

/// KERNEL_OP: `caller` may use `operation` only if its manifest `kernel-ops` lists it.
pub fn check_kernel_op(caller: &ComponentDescriptor, operation: u64) -> Result<(), SyscallError> {
    if granted(caller.kernel_ops, operation) {
        Ok(())
    } else {
        Err(SyscallError::NotAllowed)
    }
}

/// NOTIFY: `caller` may set notification bits on component `target` (an id, as the caller
/// passes it in x1) only if its manifest `notifies` names that component.
pub fn check_notify(caller: &ComponentDescriptor, target: u64) -> Result<(), SyscallError> {
    if granted(caller.may_notify, target) {
        Ok(())
    } else {
        Err(SyscallError::NotAllowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hv_abi::PhysRange;
    use hv_ipc::abi::{interface, kernel_op};

    fn component(may_call: u32, kernel_ops: u32, may_notify: u32) -> ComponentDescriptor {
        let region = PhysRange::from_size(0x4080_0000, 0x10_0000).unwrap();
        ComponentDescriptor {
            name: ComponentDescriptor::name_field("vm-manager"),
            region,
            image_store: PhysRange::from_size(0x4180_0000, 0x8000).unwrap(),
            entry: region.start,
            ipc_rx: region.start + 0x8000,
            ipc_tx: region.start + 0x8100,
            serves: interface::GUEST_TRAP,
            may_call,
            kernel_ops,
            may_notify,
            routes: 0,
            smccc_ranges: [(0, 0); hv_abi::MAX_SMCCC_RANGES],
        }
    }

    #[test]
    fn notify_reaches_only_the_components_the_manifest_names() {
        // `notifies = ["supervisor", "mem-protect"]`: components 0 and 2.
        let caller = component(0, 0, 0b101);
        assert_eq!(check_notify(&caller, 0), Ok(()));
        assert_eq!(check_notify(&caller, 2), Ok(()));
        for target in [1, 3, 7, 31, 32, 63, 64, u64::MAX] {
            assert_eq!(
                check_notify(&caller, target),
                Err(SyscallError::NotAllowed),
                "target {target}"
            );
        }
        // Without `notifies`, no target at all.
        let silent = component(u32::MAX, u32::MAX, 0);
        for target in 0..40 {
            assert_eq!(check_notify(&silent, target), Err(SyscallError::NotAllowed));
        }
    }

    #[test]
    fn call_and_kernel_op_need_their_grants() {
        let caller = component(
            1 << interface::SUPERVISOR,
            1 << kernel_op::READ_COUNTER,
            u32::MAX,
        );
        assert_eq!(check_call(&caller, interface::SUPERVISOR), Ok(()));
        assert_eq!(
            check_call(&caller, interface::GUEST_TRAP),
            Err(SyscallError::NotAllowed)
        );
        assert_eq!(check_call(&caller, 40), Err(SyscallError::NotAllowed));
        assert_eq!(check_kernel_op(&caller, kernel_op::READ_COUNTER), Ok(()));
        assert_eq!(
            check_kernel_op(&caller, kernel_op::RESTART),
            Err(SyscallError::NotAllowed)
        );
        assert_eq!(check_kernel_op(&caller, 99), Err(SyscallError::NotAllowed));
        // A notify grant grants nothing else.
        let notifier = component(0, 0, u32::MAX);
        assert_eq!(
            check_call(&notifier, interface::SUPERVISOR),
            Err(SyscallError::NotAllowed)
        );
        assert_eq!(
            check_kernel_op(&notifier, kernel_op::RESTART),
            Err(SyscallError::NotAllowed)
        );
    }
}
