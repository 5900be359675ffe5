//! Run-time choice between builds of the hot per-row kernels for different instruction sets.
//!
//! The workspace compiles for the target's baseline (SSE2 on x86-64), so one binary runs on any
//! x86-64 CPU. The per-row kernels (colour conversion here, view synthesis and compose in the
//! stereo engine) are plain loops that the compiler vectorises. Baseline SSE2 lacks the 32-bit
//! multiply, the 32-bit min/max and blends that those loops use, and has 16-byte vectors.
//! [`multiversion!`](crate::multiversion) therefore compiles a kernel twice: the baseline build, and one with AVX2 and
//! FMA enabled. It picks one at run time from an [`Isa`], which [`Isa::detect`] gives.
//!
//! Both builds give bit-identical results. Rust never contracts `a * b + c` into a fused
//! multiply-add by itself, and integer and IEEE float operations do not depend on the vector
//! width. The kernels' tests compare the two builds.
//!
//! Setting `STEREOSPOT_SIMD=baseline` in the environment disables the AVX2 build for the whole
//! process. [`force_baseline`] does the same from code, for benchmarks that time both builds in
//! one run.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Which build of the [`multiversion!`](crate::multiversion) kernels to run. Only [`Isa::detect`] makes one with
/// AVX2, after checking the CPU: that check is what makes calling the AVX2 build sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Isa {
    avx2: bool,
}

/// Set by [`force_baseline`].
static FORCE_BASELINE: AtomicBool = AtomicBool::new(false);

/// Whether this CPU has AVX2 and FMA and the environment allows using them.
static AVX2_USABLE: LazyLock<bool> = LazyLock::new(|| {
    let allowed = std::env::var("STEREOSPOT_SIMD").map_or(true, |v| v != "baseline");
    allowed && cpu_has_avx2_fma()
});

#[cfg(target_arch = "x86_64")]
fn cpu_has_avx2_fma() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_avx2_fma() -> bool {
    false
}

impl Isa {
    /// The build for the target's baseline, which every CPU of the target runs.
    pub const BASELINE: Isa = Isa { avx2: false };

    /// The best build this CPU runs (cached after the first call), unless
    /// `STEREOSPOT_SIMD=baseline` or [`force_baseline`] says otherwise.
    pub fn detect() -> Isa {
        Isa {
            avx2: *AVX2_USABLE && !FORCE_BASELINE.load(Ordering::Relaxed),
        }
    }

    /// Whether this selects the AVX2 and FMA build. True only on a CPU that has them.
    pub fn avx2(self) -> bool {
        self.avx2
    }

    /// A short name for logs and benchmarks: `avx2` or `baseline`.
    pub fn name(self) -> &'static str {
        if self.avx2 { "avx2" } else { "baseline" }
    }
}

/// Makes the following [`Isa::detect`] calls return [`Isa::BASELINE`] (`true`) or the best
/// build again (`false`). Both builds give the same results, so this only changes the speed. It
/// is meant for benchmarks that compare the two in one run.
pub fn force_baseline(on: bool) {
    FORCE_BASELINE.store(on, Ordering::Relaxed);
}

/// Defines a kernel function that is compiled twice and dispatched on an [`Isa`].
///
/// ```ignore
/// multiversion! {
///     /// Adds `b` to `a`.
///     fn add_rows(a: &mut [u32], b: &[u32]) {
///         for (a, b) in a.iter_mut().zip(b) { *a += b; }
///     }
/// }
/// add_rows(Isa::detect(), &mut a, &b);
/// ```
///
/// The generated function takes an [`Isa`] as its first argument and returns nothing. Arguments
/// must be plain identifiers; const generic parameters are allowed.
///
/// The body is compiled twice, as two functions: closures inherit their defining function's
/// target features, so a body that hands its per-row work to rayon as a closure works. Functions
/// the body calls get AVX2 only when they are inlined, so the kernels it calls should be
/// `#[inline(always)]`.
#[macro_export]
macro_rules! multiversion {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident $(<$(const $g:ident: $gt:ty),+ $(,)?>)?
            ($($arg:ident: $ty:ty),* $(,)?) $body:block
    ) => {
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name $(<$(const $g: $gt),+>)? (isa: $crate::simd::Isa, $($arg: $ty),*) {
            #[allow(clippy::too_many_arguments)]
            fn baseline $(<$(const $g: $gt),+>)? ($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            fn avx2 $(<$(const $g: $gt),+>)? ($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            if isa.avx2() {
                // SAFETY: only `Isa::detect` makes an `Isa` whose `avx2()` is true, after
                // `is_x86_feature_detected!` found AVX2 and FMA on this CPU, which is the
                // precondition of calling a function built with those target features.
                #[allow(unsafe_code)]
                unsafe {
                    avx2 $(::<$($g),+>)? ($($arg),*)
                };
                return;
            }
            let _ = isa;
            baseline $(::<$($g),+>)? ($($arg),*)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    multiversion! {
        /// A kernel with a 32-bit multiply and a float division, which differ between builds
        /// if anything does.
        fn kernel<const K: u32>(a: &[u32], f: &[f32], out: &mut [u32], g: &mut [f32]) {
            for ((o, &a), (g, &f)) in out.iter_mut().zip(a).zip(g.iter_mut().zip(f)) {
                *o = a.wrapping_mul(a ^ K).min(a >> 3);
                *g = f / (f * 0.5 + 1.0) + f * f;
            }
        }
    }

    #[test]
    fn both_builds_agree_bit_for_bit() {
        let a: Vec<u32> = (0..1000u32)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect();
        let f: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 0.37).collect();
        let run = |isa| {
            let (mut o, mut g) = (vec![0; 1000], vec![0.0f32; 1000]);
            kernel::<0x55>(isa, &a, &f, &mut o, &mut g);
            (o, g.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        };
        let base = run(Isa::BASELINE);
        assert_eq!(base.0[7], a[7].wrapping_mul(a[7] ^ 0x55).min(a[7] >> 3));
        assert_eq!(run(Isa::detect()), base);
    }

    #[test]
    fn detection_names_the_build() {
        assert_eq!(Isa::BASELINE.name(), "baseline");
        assert!(!Isa::BASELINE.avx2());
        let isa = Isa::detect();
        assert_eq!(isa.name(), if isa.avx2() { "avx2" } else { "baseline" });
        if isa.avx2() {
            assert!(cpu_has_avx2_fma());
        }
    }
}
