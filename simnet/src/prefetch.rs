//! Software prefetch: a hint to the CPU to start loading a cache line that
//! will soon be read. It never changes a value, only when memory arrives.
//! On targets without a prefetch instruction these do nothing.

/// Cache line size assumed when a value spans several lines, bytes.
const LINE: usize = 64;

/// Starts loading the cache line holding the start of `value`.
#[inline(always)]
pub fn read<T>(value: &T) {
    line(std::ptr::from_ref(value).cast::<u8>());
}

/// Starts loading every cache line `value` spans.
#[inline(always)]
pub fn read_all<T>(value: &T) {
    let start = std::ptr::from_ref(value).cast::<u8>();
    let mut offset = 0;
    while offset < size_of::<T>() {
        line(start.wrapping_add(offset));
        offset += LINE;
    }
    // The last line, when the value does not start on a line boundary.
    line(start.wrapping_add(size_of::<T>().saturating_sub(1)));
}

/// Starts loading the cache line holding address `p`, which need not be
/// valid: a prefetch never faults.
#[inline(always)]
pub fn line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: prefetch is a hint: it does not fault on any address,
        // dereferences nothing the program can observe, and the SSE it
        // needs is part of every x86_64 CPU.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
