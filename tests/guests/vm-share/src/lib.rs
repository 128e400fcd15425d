//! What the guest (`hv-guest-vm-share`) and the host (`hv-guest-vm-share-host`) agree on: the
//! words they exchange in the page the guest shares. Each side writes its own word only.
#![no_std]

/// The guest VM's id.
pub const GUEST: u64 = 1;
/// The guest writes this at offset [`GUEST_WORD`] before it shares the page.
pub const PATTERN: u64 = 0x7368_6172_6564_0001;
/// The host writes this at offset [`HOST_WORD`] once it has read the pattern.
pub const ANSWER: u64 = 0x686f_7374_0000_0002;
/// Where in the page the guest's word is.
pub const GUEST_WORD: u64 = 0;
/// Where in the page the host's word is.
pub const HOST_WORD: u64 = 8;
/// How long either side waits for the other, in seconds of counter time.
pub const PATIENCE_S: u64 = 30;
