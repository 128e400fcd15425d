//! The component template: the smallest component that serves something. Copy this crate to
//! start a new component; `docs/adding-a-component.md` walks through every step.
//!
//! It takes the two hypercalls its manifest entry routes to it (`routes =
//! ["smccc:0xC60000A0-0xC60000A1"]`, TEMPLATE_ADD and TEMPLATE_READ) as `guest-trap` calls on
//! the calling vCPU's behalf, and answers them from a counter that starts at its
//! `settings.start`. The logic is [`counter`] (host-tested); this file is only the glue:
//!
//! - `component_main!` names `main`, which reads the configuration the build embedded
//!   (`hv_component_rt::config()`) and enters the server loop;
//! - the server implements the generated `GuestTrapServer` trait: `smccc` only, since the
//!   interface answers MMIO and stage-2 faults it is never routed with what the hardware would
//!   (its `=> method else answer` defaults); `handle_call` hands every call to `hv_ipc::dispatch`, which decodes it, calls
//!   the method, encodes the reply and refuses interfaces the component does not serve.
//!
//! Built for the host it is an empty program around the tested module.
#![cfg_attr(target_os = "none", no_std, no_main)]

// On the host only the tests use the counter.
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod counter;

#[cfg(target_os = "none")]
mod component {
    //! The component proper: the server loop around the counter.

    use defmt::{debug, info};
    use hv_component_rt::hv_ipc;
    use hv_component_rt::hv_ipc::abi::MESSAGE_MAX;
    use hv_component_rt::hv_ipc::interfaces::guest_trap::{
        Conduit, GuestTrapInterface, GuestTrapServer, TrapResolution,
    };
    use hv_component_rt::{Ipc, Server, StartInfo, serve_forever};

    use crate::counter::Counter;

    hv_component_rt::component_main!(main);

    fn main(info: StartInfo, mut ipc: Ipc) -> ! {
        let settings = hv_component_rt::config().settings.template();
        info!(
            "template: component {=usize} up, counter at {=u64}",
            info.index, settings.start
        );
        let mut server = Template {
            counter: Counter::new(settings.start),
        };
        serve_forever(&mut ipc, &mut server)
    }

    struct Template {
        counter: Counter,
    }

    /// The routed hypercalls arrive as guest traps.
    impl GuestTrapServer for Template {
        fn smccc(
            &mut self,
            vm: u16,
            vcpu: u16,
            _conduit: Conduit,
            regs: [u64; 8],
        ) -> TrapResolution {
            let answer = self.counter.hypercall(&regs);
            debug!(
                "template: call {=u64}: vm{=u16} vcpu{=u16}: {=u64:#x}({=u64}) -> {=i64}, {=u64}",
                self.counter.calls(),
                vm,
                vcpu,
                regs[0],
                regs[1],
                answer[0] as i64,
                answer[1]
            );
            TrapResolution::results(answer)
        }
    }

    impl Server for Template {
        fn handle_call(
            &mut self,
            _sender: u64,
            interface: u16,
            request: &[u8],
            reply: &mut [u8; MESSAGE_MAX],
        ) -> usize {
            hv_ipc::dispatch::<GuestTrapInterface, _>(self, interface, request, reply)
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
