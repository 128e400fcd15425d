//! Building messages of any shape from random words, for tests.
//!
//! Every type the [`interface!`](crate::interface) macro defines implements [`Generate`], so a
//! test can build a value of each variant of each interface's messages (with random field
//! values) from the definition alone: the decoder fuzzing in `ipc/tests/` covers every
//! interface in [`interfaces::ALL`](crate::interfaces::ALL) and every variant without a list
//! kept by hand. Field types outside the macro need an implementation here; those messages use
//! today (integers, `bool`, arrays, `Option`) have one.
//!
//! Nothing here runs outside tests; the linker drops it from the images.

/// Where generated values come from: a list of words, read in a cycle (zeros if empty).
///
/// `Entropy::new(&[u64::MAX])` makes every integer its largest value, hence the longest
/// encodings.
#[derive(Clone, Debug)]
pub struct Entropy<'a> {
    words: &'a [u64],
    position: usize,
}

impl<'a> Entropy<'a> {
    /// Entropy that hands out `words` in order, then again from the start.
    pub const fn new(words: &'a [u64]) -> Self {
        Entropy { words, position: 0 }
    }

    /// The next word.
    pub fn word(&mut self) -> u64 {
        if self.words.is_empty() {
            return 0;
        }
        let word = self.words[self.position % self.words.len()];
        self.position = self.position.wrapping_add(1);
        word
    }
}

/// A type whose values can be built from [`Entropy`].
pub trait Generate: Sized {
    /// How many variants the type has (1 for a struct or a scalar).
    const VARIANTS: usize = 1;

    /// A value of variant `variant % VARIANTS` (in definition order), its fields drawn from
    /// `entropy`.
    fn generate(variant: usize, entropy: &mut Entropy<'_>) -> Self;
}

macro_rules! generate_integers {
    ($($integer:ty),*) => {
        $(
            impl Generate for $integer {
                fn generate(_variant: usize, entropy: &mut Entropy<'_>) -> Self {
                    // Truncation on purpose: any bit pattern is a valid value.
                    entropy.word() as $integer
                }
            }
        )*
    };
}

generate_integers!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl Generate for crate::addr::Ipa {
    fn generate(_variant: usize, entropy: &mut Entropy<'_>) -> Self {
        Self(entropy.word())
    }
}

impl Generate for crate::addr::PhysAddr {
    fn generate(_variant: usize, entropy: &mut Entropy<'_>) -> Self {
        Self(entropy.word())
    }
}

impl Generate for bool {
    fn generate(_variant: usize, entropy: &mut Entropy<'_>) -> Self {
        entropy.word() & 1 == 1
    }
}

impl<T: Generate, const N: usize> Generate for [T; N] {
    fn generate(_variant: usize, entropy: &mut Entropy<'_>) -> Self {
        core::array::from_fn(|_| T::generate(entropy.word() as usize, entropy))
    }
}

/// `None` is variant 0; `Some` with each variant of `T` the ones after it, so counting through
/// `VARIANTS` reaches every shape.
impl<T: Generate> Generate for Option<T> {
    const VARIANTS: usize = 1 + T::VARIANTS;

    fn generate(variant: usize, entropy: &mut Entropy<'_>) -> Self {
        match variant % Self::VARIANTS {
            0 => None,
            some => Some(T::generate(some - 1, entropy)),
        }
    }
}

/// `Ok` with each variant of `T` first, then `Err` with each variant of `E`: a
/// [`WireReply`](crate::WireReply)'s variants are every reply and every error.
impl<T: Generate, E: Generate> Generate for Result<T, E> {
    const VARIANTS: usize = T::VARIANTS + E::VARIANTS;

    fn generate(variant: usize, entropy: &mut Entropy<'_>) -> Self {
        let variant = variant % Self::VARIANTS;
        if variant < T::VARIANTS {
            Ok(T::generate(variant, entropy))
        } else {
            Err(E::generate(variant - T::VARIANTS, entropy))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_cycles_and_defaults_to_zero() {
        let mut entropy = Entropy::new(&[1, 2]);
        assert_eq!([entropy.word(), entropy.word(), entropy.word()], [1, 2, 1]);
        assert_eq!(Entropy::new(&[]).word(), 0);
    }

    #[test]
    fn values_follow_the_entropy() {
        let mut entropy = Entropy::new(&[u64::MAX]);
        assert_eq!(<[u16; 2]>::generate(0, &mut entropy), [u16::MAX; 2]);
        assert_eq!(Option::<u8>::generate(1, &mut entropy), Some(u8::MAX));
        assert_eq!(Option::<u8>::generate(2, &mut entropy), None);
        assert!(bool::generate(0, &mut entropy));
        assert_eq!(Result::<u8, bool>::VARIANTS, 2);
        assert_eq!(Result::<u8, bool>::generate(1, &mut entropy), Err(true));
    }
}
